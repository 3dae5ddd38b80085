"""The admin's forms. Every one is a FlaskForm, so each carries (and is checked for) a CSRF token."""

from __future__ import annotations

import re

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    HiddenField,
    IntegerField,
    PasswordField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Regexp, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from bot.models import Role
from cloud.camera_settings import SLUG, ZoneError, parse_zone

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
ALL_CAMERAS = "all"


def normalise_phone(value: str | None) -> str | None:
    """People type numbers with spaces, dashes and brackets; the database keeps E.164."""
    if value is None:
        return None
    return re.sub(r"[\s().-]", "", value)


def _strip(value: str | None) -> str | None:
    return value.strip() if isinstance(value, str) else value


def valid_zone(_form: FlaskForm, field: TextAreaField) -> None:
    """The detection function reads the zone as stored: refuse here what it could not use, saying why."""
    try:
        parse_zone(field.data)
    except ZoneError as exc:
        message = str(exc)
        end = "" if message.endswith((".", ")")) else "."
        raise ValidationError(message[:1].upper() + message[1:] + end) from exc


def valid_stream(_form: FlaskForm, field: StringField) -> None:
    """Only URLs the camera agent can read (the message names the schemes, never the password)."""
    from agent.settings import ConfigError, check_stream_url

    if field.data:
        try:
            check_stream_url(field.data)
        except ConfigError as exc:
            raise ValidationError(str(exc)[:1].upper() + str(exc)[1:] + ".") from exc


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class ActionForm(FlaskForm):
    """A button that changes something (delete, close, replay, log out): only the CSRF token."""


class LoginForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired(), Length(max=64)], filters=[_strip])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])
    next = HiddenField()


class PersonForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=120)], filters=[_strip])
    phone = StringField("Phone (E.164)", validators=[DataRequired(), Regexp(E164, message=(
        "Use the international format, e.g. +14155550123."))], filters=[normalise_phone])
    role = SelectField("Role", choices=[SelectChoice(r.value, r.value.title()) for r in Role],
                       default=Role.member.value)
    opted_out = BooleanField("Opted out (texted STOP: Corb sends nothing)")
    subscriptions = MultiCheckboxField("Alerts from", choices=[], validate_choice=True)


class CameraForm(FlaskForm):
    slug = StringField("Slug", validators=[DataRequired(), Regexp(SLUG, message=(
        "Lower-case letters, digits and dashes, e.g. lobby or back-door."))], filters=[_strip])
    name = StringField("Name", validators=[DataRequired(), Length(max=120)], filters=[_strip])
    area = StringField("Area", validators=[Length(max=120)], filters=[_strip])
    zone = TextAreaField("Counting zone", validators=[Length(max=2000), valid_zone], filters=[_strip])
    # Stream URLs hold the camera's password: never filled in from the database (the page shows them
    # redacted beside the field); blank keeps the stored one, the checkbox removes it.
    stream = StringField("Stream", validators=[Length(max=2048), valid_stream], filters=[_strip])
    remove_stream = BooleanField("Remove the stream")
    substream = StringField("Sub-stream", validators=[Length(max=2048), valid_stream], filters=[_strip])
    remove_substream = BooleanField("Remove the sub-stream")


class SettingsForm(FlaskForm):
    alert_cooldown_s = IntegerField("Alert cooldown (seconds)", validators=[
        InputRequired(), NumberRange(min=0, max=7 * 86400)])
    retention_days = IntegerField("Keep snapshots and detections (days)", validators=[
        InputRequired(), NumberRange(min=1, max=3650)])
    camera_grace_s = IntegerField("Camera offline after (seconds)", validators=[
        InputRequired(), NumberRange(min=30, max=86400)])


class SimulatorForm(FlaskForm):
    phone = SelectField("Phone", choices=[], validate_choice=True)
    body = TextAreaField("Message", validators=[DataRequired(), Length(max=1600)], filters=[_strip])
