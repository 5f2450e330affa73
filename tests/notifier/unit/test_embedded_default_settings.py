"""`make run` (``ehc run``, the embedded default) starts the notifier with settings every message
template can be filled from: it logged a configuration error at every start because the families'
SENDIASS contact was given to the web front only, so a family's missed-deadline message would have
failed when sent."""

from __future__ import annotations

from services.notifier.bootstrap import bootstrap, template_setting_problems
from services.pipeline import pipeline_settings


async def test_the_embedded_defaults_fill_every_template() -> None:
    settings = pipeline_settings("127.0.0.1:9", smtp_port=2525, web_port=8000)
    notifier = bootstrap(settings)
    links = notifier.service.sender.short_links
    errors, warnings = template_setting_problems(settings.notifier, links.base_url if links else None)
    assert errors == [] and warnings == []
    # what a family is told by text and on its page is the same
    assert settings.notifier.sendiass_contact == settings.web.sendiass_contact
    assert settings.notifier.council_phone == settings.web.council_phone
