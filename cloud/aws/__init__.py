"""AWS adapters: S3, EventBridge and Lambda behind Corb's own interfaces, plus the Zappa glue.

Nothing here is imported on the embedded path (``CORB_BUCKET=folder``, ``CORB_BUS=local``):
``cloud.adapters`` imports these modules only when the configuration names AWS, and boto3 itself is imported
only inside :mod:`cloud.aws.session` when the first client is made, keeping it off the webhook's cold start.
"""
