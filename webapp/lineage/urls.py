from django.urls import path

from webapp.lineage import views

app_name = "lineage"

urlpatterns = [
    path("", views.index, name="index"),
    path("import/", views.import_graph, name="import"),
    path("kinship/", views.kinship_view, name="kinship"),
    path("experiment/<slug:slug>/", views.experiment_graphs, name="experiment"),
    path("checkpoint/<str:slug>/", views.checkpoint_tree, name="checkpoint"),
    path("<slug:slug>/", views.graph_detail, name="graph"),
    path("<slug:slug>/families.json", views.families_json, name="families_json"),
    path("<slug:slug>/overview.json", views.graph_overview_json, name="overview"),
    path("<slug:slug>/search.json", views.graph_search, name="search"),
    path("<slug:slug>/find/", views.graph_find, name="find"),
    path("<slug:slug>/node.json", views.node_json, name="node"),
    path("<slug:slug>/report.json", views.report_json, name="report"),
    path("<slug:slug>/drift/", views.graph_drift, name="drift"),
    path("<slug:slug>/embed/", views.graph_embed, name="embed"),
    path("<slug:slug>/export/<str:fmt>", views.graph_export, name="export"),
    path("<slug:slug>/delete/", views.graph_delete, name="delete"),
    path("<slug:slug>/family/<int:index>/", views.family_detail, name="family"),
    path("<slug:slug>/family/<int:index>/layout.json", views.family_layout_json, name="layout"),
    path("<slug:slug>/family/<int:index>/drift/", views.family_drift, name="family_drift"),
    path("<slug:slug>/family/<int:index>/embed/", views.family_embed, name="family_embed"),
    path("<slug:slug>/family/<int:index>/export/<str:fmt>", views.family_export, name="family_export"),
]
