"""WTForms forms (CSRF protected through Flask-WTF)."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l

from .hygiene import HygienicForm as FlaskForm  # FlaskForm + control-character check
from .hygiene import NoSpoofing, nfkc
from .identity import USERNAME_MAX, ValidUsername
from .utils import SLUG_MAX, slug_problem
from wtforms import (
    BooleanField,
    HiddenField,
    IntegerField,
    PasswordField,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import DataRequired, EqualTo, Length, NumberRange, Optional, Regexp

EMAIL_RE = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


def _strip(value):
    return value.strip() if isinstance(value, str) else value


class ValidSlug:
    """WTForms validator: the slug is what slugify() keeps (see forum.utils)."""

    def __call__(self, form, field):
        from wtforms.validators import ValidationError

        problem = slug_problem(field.data)
        if problem:
            raise ValidationError(problem)


class LoginForm(FlaskForm):
    username = StringField(_l("Username"), filters=[nfkc], validators=[DataRequired(), Length(max=40)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=200)])
    remember = BooleanField(_l("Remember me"))
    next = HiddenField()
    submit = SubmitField(_l("Log in"))


def new_password_fields(label, repeat_label):
    """A password and its repetition, as every form that sets one asks for them."""
    return (
        PasswordField(label, validators=[DataRequired(), Length(min=8, max=200)]),
        PasswordField(repeat_label, validators=[
            DataRequired(), EqualTo("password", message=_l("Passwords must match."))]),
    )


class RegisterForm(FlaskForm):
    username = StringField(
        _l("Username"),
        filters=[nfkc, _strip],
        description=_l("Up to %(max)d letters or digits of any script, '.', '_' and '-'.", max=USERNAME_MAX),
        validators=[DataRequired(), NoSpoofing(), ValidUsername()],
    )
    email = StringField(
        _l("Email"),
        validators=[DataRequired(), Length(max=255), Regexp(EMAIL_RE, message=_l("Invalid email address."))],
    )
    password, confirm = new_password_fields(_l("Password"), _l("Repeat password"))
    submit = SubmitField(_l("Register"))


class TopicForm(FlaskForm):
    title = StringField(_l("Title"), validators=[DataRequired(), NoSpoofing(), Length(min=3, max=200)])
    body = TextAreaField(_l("Message"), validators=[DataRequired(), Length(min=1, max=50000)])
    submit = SubmitField(_l("Create topic"))
    preview = SubmitField(_l("Preview"))


class PostForm(FlaskForm):
    body = TextAreaField(_l("Message"), validators=[DataRequired(), Length(min=1, max=50000)])
    submit = SubmitField(_l("Post reply"))
    preview = SubmitField(_l("Preview"))


class EditPostForm(FlaskForm):
    # Only shown (and only required) when editing the opening post of a topic.
    title = StringField(_l("Title"), validators=[Optional(), NoSpoofing(), Length(min=3, max=200)])
    body = TextAreaField(_l("Message"), validators=[DataRequired(), Length(min=1, max=50000)])
    submit = SubmitField(_l("Save"))
    preview = SubmitField(_l("Preview"))


class ActionForm(FlaskForm):
    """Empty form used for CSRF-protected POST buttons (logout, delete, lock...)."""

    submit = SubmitField(_l("Submit"))


class ConfirmForm(FlaskForm):
    """The form of a confirmation page for a destructive action (delete, ban)."""

    reason = StringField(_l("Reason (optional, goes to the moderation log)"),
                         validators=[Optional(), Length(max=500)])
    submit = SubmitField(_l("Confirm"))


class ChangePasswordForm(FlaskForm):
    current = PasswordField(_l("Current password"), validators=[DataRequired(), Length(max=200)])
    password, confirm = new_password_fields(_l("New password"), _l("Repeat new password"))
    submit = SubmitField(_l("Change password"))


class ForgotPasswordForm(FlaskForm):
    account = StringField(_l("Username or e-mail address"), filters=[nfkc, _strip],
                          validators=[DataRequired(), Length(max=255)])
    submit = SubmitField(_l("Send me a link"))


class ResetPasswordForm(FlaskForm):
    password, confirm = new_password_fields(_l("New password"), _l("Repeat new password"))
    submit = SubmitField(_l("Set new password"))


class BoardForm(FlaskForm):
    name = StringField(_l("Name"), filters=[nfkc, _strip], validators=[DataRequired(), NoSpoofing(), Length(min=1, max=120)])
    slug = StringField(
        _l("URL slug"),
        filters=[nfkc, _strip],
        description=_l("Lower-case letters and digits of any script and '-'; derived from the name when empty."),
        validators=[Optional(), Length(max=SLUG_MAX), ValidSlug()],
    )
    description = TextAreaField(_l("Description"), validators=[Optional(), Length(max=2000)])
    position = IntegerField(_l("Position"), validators=[Optional(), NumberRange(min=0, max=100000)])
    submit = SubmitField(_l("Save board"))


class MoveTopicForm(FlaskForm):
    board_id = SelectField(_l("Move to"), coerce=int)
    submit = SubmitField(_l("Move"))


class SettingsForm(FlaskForm):
    """A member's language and time zone (forum.i18n); empty: automatic / the forum's."""

    locale = SelectField(_l("Language"), validators=[Optional()])
    timezone = SelectField(_l("Time zone"), validators=[Optional()])
    submit = SubmitField(_l("Save settings"))

    def __init__(self, *args, **kwargs):
        from .i18n import LANGUAGES, common_timezones

        super().__init__(*args, **kwargs)
        self.locale.choices = [("", _l("The browser's language"))] + list(LANGUAGES.items())
        self.timezone.choices = [("", _l("The forum's default"))] + [(z, z) for z in common_timezones()]
