from django.urls import path

from webapp.phases import views

urlpatterns = [
    path("", views.index, name="phases_index"),
    path("<str:slug>/cell/<int:i>/<int:j>/", views.cell_detail, name="sweep_cell"),
    path("<str:slug>/run/<int:run_id>/landscape", views.run_landscape, name="sweep_run_landscape"),
    path("<str:slug>/resume", views.resume, name="sweep_resume"),
]
