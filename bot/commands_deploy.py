"""``corb deploy STAGE [--dry-run]``: after ``zappa deploy/update``, apply what Zappa does not create.

The work is in ``cloud.aws.deploy`` (boto3 stays in ``cloud/aws``); this module only parses and prints.
Credentials, region and endpoint come from the usual AWS environment (``AWS_PROFILE``, ``AWS_REGION``,
``AWS_ENDPOINT_URL``); what to apply comes from the declaration, never from this machine's CORB_* settings.
"""

from __future__ import annotations

import click


def register(main: click.Group) -> None:
    @main.command("deploy")
    @click.argument("stage")
    @click.option("--dry-run", is_flag=True,
                  help="Print the plan (create / update / unchanged per resource); change nothing.")
    def deploy(stage: str, dry_run: bool) -> None:
        """Apply the EventBridge rules, targets, permissions, async config and S3 notification of STAGE.

        Run it after `zappa deploy STAGE` / `zappa update STAGE` (Zappa's post callback also runs it). It is
        idempotent: a second run changes nothing and says so.
        """
        from cloud.aws.deploy import DeployError, apply_plan, plan_stage
        from cloud.declaration import DeclarationError

        try:
            plan = plan_stage(stage)
            if dry_run:
                for change in plan.changes:
                    click.echo(change.line())
                click.echo(f"dry run, nothing applied: {plan.summary()}")
            else:
                apply_plan(plan, click.echo)
        except (DeployError, DeclarationError) as exc:
            raise click.ClickException(str(exc)) from exc
        if plan.missing:
            raise click.ClickException(
                f"{len(plan.missing)} resource(s) could not be applied yet (see 'missing' above): "
                "deploy those Lambdas / schedules with Zappa, then run `corb deploy` again")
