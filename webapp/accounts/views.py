from django import forms
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import UserCreationForm
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from webapp.accounts import tokens as token_services
from webapp.accounts.models import TokenScope


def signup(request):
    form = UserCreationForm(data=request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user)
        return redirect("dashboard")
    return render(request, "registration/signup.html", {"form": form}, status=400 if form.errors else 200)


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What the token is for, e.g. the machine or script.")
    scope = forms.ChoiceField(choices=TokenScope.choices, initial=TokenScope.WRITE)
    expires_in_days = forms.IntegerField(required=False, min_value=1, max_value=3650, initial=90,
                                         help_text="Empty: never expires.")


@login_required
def tokens(request):
    form = TokenForm(data=request.POST or None)
    context = {"form": form}
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                issued = token_services.token_create(user=request.user, **form.cleaned_data)
            except ValueError as exc:
                form.add_error(None, str(exc))
            else:
                # Shown in this response only: the secret is never stored, so it cannot be shown again.
                context.update(new_token=issued.token, new_secret=issued.secret, form=TokenForm())
        status = 400 if form.errors else 200
    context["tokens"] = token_services.tokens_of_user(user=request.user)
    return render(request, "accounts/tokens.html", context, status=status)


@login_required
@require_POST
def token_revoke(request, token_id):
    if token_services.token_revoke(user=request.user, token_id=token_id):
        messages.success(request, "Token revoked.")
    return redirect("account_tokens")
