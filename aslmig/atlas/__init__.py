"""Templates and regions: TemplateFlow access with an offline bundle, ROI sets, extraction."""

from aslmig.atlas.templates import (
    BUNDLED_SPACE,
    DEFAULT_SPACE,
    TemplateFetchError,
    TemplateFiles,
    fetch_templates,
    resolve_template,
)

__all__ = [
    "BUNDLED_SPACE",
    "DEFAULT_SPACE",
    "TemplateFetchError",
    "TemplateFiles",
    "fetch_templates",
    "resolve_template",
]
