"""WTForms forms (CSRF protected through Flask-WTF)."""
from __future__ import annotations

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
    username = StringField("Username", filters=[nfkc], validators=[DataRequired(), Length(max=40)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=200)])
    remember = BooleanField("Remember me")
    next = HiddenField()
    submit = SubmitField("Log in")


class RegisterForm(FlaskForm):
    username = StringField(
        "Username",
        filters=[nfkc, _strip],
        description=f"Up to {USERNAME_MAX} letters or digits of any script, '.', '_' and '-'.",
        validators=[DataRequired(), NoSpoofing(), ValidUsername()],
    )
    email = StringField(
        "Email",
        validators=[DataRequired(), Length(max=255), Regexp(EMAIL_RE, message="Invalid email address.")],
    )
    password = PasswordField("Password", validators=[DataRequired(), Length(min=8, max=200)])
    confirm = PasswordField(
        "Repeat password", validators=[DataRequired(), EqualTo("password", message="Passwords must match.")]
    )
    submit = SubmitField("Register")


class TopicForm(FlaskForm):
    title = StringField("Title", validators=[DataRequired(), NoSpoofing(), Length(min=3, max=200)])
    body = TextAreaField("Message", validators=[DataRequired(), Length(min=1, max=50000)])
    submit = SubmitField("Create topic")
    preview = SubmitField("Preview")


class PostForm(FlaskForm):
    body = TextAreaField("Message", validators=[DataRequired(), Length(min=1, max=50000)])
    submit = SubmitField("Post reply")
    preview = SubmitField("Preview")


class EditPostForm(FlaskForm):
    # Only shown (and only required) when editing the opening post of a topic.
    title = StringField("Title", validators=[Optional(), NoSpoofing(), Length(min=3, max=200)])
    body = TextAreaField("Message", validators=[DataRequired(), Length(min=1, max=50000)])
    submit = SubmitField("Save")
    preview = SubmitField("Preview")


class ActionForm(FlaskForm):
    """Empty form used for CSRF-protected POST buttons (logout, delete, lock...)."""

    submit = SubmitField("Submit")


class ConfirmForm(FlaskForm):
    """The form of a confirmation page for a destructive action (delete, ban)."""

    reason = StringField("Reason (optional, goes to the moderation log)",
                         validators=[Optional(), Length(max=500)])
    submit = SubmitField("Confirm")


class ChangePasswordForm(FlaskForm):
    current = PasswordField("Current password", validators=[DataRequired(), Length(max=200)])
    password = PasswordField("New password", validators=[DataRequired(), Length(min=8, max=200)])
    confirm = PasswordField(
        "Repeat new password",
        validators=[DataRequired(), EqualTo("password", message="Passwords must match.")],
    )
    submit = SubmitField("Change password")


class ForgotPasswordForm(FlaskForm):
    account = StringField("Username or e-mail address", filters=[nfkc, _strip],
                          validators=[DataRequired(), Length(max=255)])
    submit = SubmitField("Send me a link")


class ResetPasswordForm(FlaskForm):
    password = PasswordField("New password", validators=[DataRequired(), Length(min=8, max=200)])
    confirm = PasswordField(
        "Repeat new password",
        validators=[DataRequired(), EqualTo("password", message="Passwords must match.")],
    )
    submit = SubmitField("Set new password")


class BoardForm(FlaskForm):
    name = StringField("Name", filters=[nfkc, _strip], validators=[DataRequired(), NoSpoofing(), Length(min=1, max=120)])
    slug = StringField(
        "URL slug",
        filters=[nfkc, _strip],
        description="Lower-case letters and digits of any script and '-'; derived from the name when empty.",
        validators=[Optional(), Length(max=SLUG_MAX), ValidSlug()],
    )
    description = TextAreaField("Description", validators=[Optional(), Length(max=2000)])
    position = IntegerField("Position", validators=[Optional(), NumberRange(min=0, max=100000)])
    submit = SubmitField("Save board")


class MoveTopicForm(FlaskForm):
    board_id = SelectField("Move to", coerce=int)
    submit = SubmitField("Move")
