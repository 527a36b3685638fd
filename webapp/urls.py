from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from webapp.accounts import views as account_views
from webapp.api.app import api
from webapp.catalog import views as catalog
from webapp.jobs import views as jobs
from webapp.runs import views as run_views
from webapp.sharing import views as sharing
from webapp.showcase import views as showcase

urlpatterns = [
    path("", showcase.home, name="home"),
    path("e/<slug:slug>/", showcase.experiment_detail, name="experiment_detail"),
    path("c/<str:slug>/", catalog.checkpoint_detail, name="checkpoint_detail"),
    path("c/<str:slug>/download", catalog.checkpoint_download, name="checkpoint_download"),
    path("jobs/new/<slug:kind>/", jobs.job_new, name="job_new"),
    path("r/<str:slug>/", jobs.result_detail, name="result_detail"),
    path("r/<str:slug>/cancel", jobs.result_cancel, name="result_cancel"),
    path("r/<str:slug>/visibility", jobs.result_visibility, name="result_visibility"),
    path("r/<str:slug>/export.json", jobs.result_export_json, name="result_export_json"),
    path("r/<str:slug>/embed", sharing.result_embed, name="result_embed"),
    path("r/<str:slug>/export.csv", sharing.result_export_csv, name="result_export_csv"),
    path("r/<str:slug>/export.html", sharing.result_export_html, name="result_export_html"),
    path("compare/", sharing.compare, name="compare"),
    path("me/", jobs.dashboard, name="dashboard"),
    path("status/", jobs.worker_status, name="worker_status"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/signup/", account_views.signup, name="signup"),
    path("api/", include(api.urls[0])),  # the site's route names, no namespace
    path("runs/<str:slug>/", run_views.run_detail, name="run_detail"),
    path("accounts/tokens/", account_views.tokens, name="account_tokens"),
    path("accounts/tokens/<int:token_id>/revoke", account_views.token_revoke, name="account_token_revoke"),
    path("lineage/", include("webapp.lineage.urls")),
    path("phases/", include("webapp.phases.urls")),
    path("admin/", admin.site.urls),
]
