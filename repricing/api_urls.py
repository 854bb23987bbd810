"""/api/v1/repricing/... routes (included by config/api_urls.py; URL names in the `api` namespace,
prefixed `repricing-`)."""

from django.urls import path

from repricing import api, tools_api

urlpatterns = [
    path("settings", api.SettingsView.as_view(), name="repricing-settings"),
    path("kill-switch", api.KillSwitchView.as_view(), name="repricing-kill-switch"),
    path("rules", api.RuleCollectionView.as_view(), name="repricing-rule-list"),
    path("rules/<uuid:public_id>", api.RuleDetailView.as_view(), name="repricing-rule-detail"),
    path("tag-rules", api.TagRuleCollectionView.as_view(), name="repricing-tag-rule-list"),
    path("tag-rules/<uuid:public_id>", api.TagRuleDetailView.as_view(), name="repricing-tag-rule-detail"),
    path("skus", api.SkuListView.as_view(), name="repricing-sku-list"),
    path("skus/assign-rule", api.BulkAssignView.as_view(), name="repricing-sku-assign-rule"),
    path("skus/<uuid:public_id>", api.SkuDetailView.as_view(), name="repricing-sku-detail"),
    path("decisions", api.DecisionListView.as_view(), name="repricing-decision-list"),
    path("decisions/<uuid:public_id>", api.DecisionDetailView.as_view(), name="repricing-decision-detail"),
    path("submissions", api.SubmissionListView.as_view(), name="repricing-submission-list"),
    path("reprice-now", api.RepriceNowView.as_view(), name="repricing-reprice-now"),
    # Tools: SKU pricing from a CSV file, backtests (repricing/tools_api.py)
    path(
        "bounds-imports", tools_api.BoundsImportCollectionView.as_view(), name="repricing-bounds-import-list"
    ),
    path(
        "bounds-imports/<uuid:public_id>",
        tools_api.BoundsImportDetailView.as_view(),
        name="repricing-bounds-import-detail",
    ),
    path(
        "bounds-imports/<uuid:public_id>/apply",
        tools_api.BoundsImportApplyView.as_view(),
        name="repricing-bounds-import-apply",
    ),
    path("sku-pricing/export", tools_api.SkuPricingExportView.as_view(), name="repricing-sku-pricing-export"),
    path("backtests", tools_api.BacktestCollectionView.as_view(), name="repricing-backtest-list"),
    path(
        "backtests/<uuid:public_id>", tools_api.BacktestDetailView.as_view(), name="repricing-backtest-detail"
    ),
]
