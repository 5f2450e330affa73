"""Plain words for what the council must do, for families (the notifier's texts and emails, and the
web front's family timeline), in English and Welsh. Only duties of the council."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

Language = Literal["en", "cy"]

#: What the council failed to do, as it follows "the legal deadline to ..." in a family message.
#: Only duties of the council: a family is never told that it missed a deadline.
#: The Welsh follows "i" and so is already soft-mutated. TODO(review): the Welsh needs checking by
#: a Welsh speaker; it avoids letters outside the GSM alphabet (circumflexes) to keep texts short.
FAMILY_DUTIES: Mapping[str, Mapping[Language, str]] = {
    "assessment.decision": {"en": "decide whether to assess EHC needs",
                            "cy": "benderfynu a fydd yn cynnal asesiad o anghenion EHC"},
    "assessment.plan_decision": {"en": "decide whether to issue an EHC plan",
                                 "cy": "benderfynu a fydd yn cyhoeddi cynllun EHC"},
    "plan.final": {"en": "issue the final EHC plan", "cy": "gyhoeddi'r cynllun EHC terfynol"},
    "review.annual": {"en": "review the EHC plan", "cy": "adolygu'r cynllun EHC"},
    "review.decision": {"en": "tell you its annual review decision",
                        "cy": "ddweud wrthych ei benderfyniad wedi'r adolygiad blynyddol"},
    "amendment.final": {"en": "finish amending the EHC plan",
                        "cy": "gyhoeddi'r cynllun EHC diwygiedig neu ddweud na fydd yn ei ddiwygio"},
    "phase_transfer.review": {"en": "amend the EHC plan for the school move",
                              "cy": "ddiwygio'r cynllun EHC ar gyfer symud i ysgol neu goleg newydd"},
    "reassessment.decision": {"en": "decide whether to reassess EHC needs",
                              "cy": "benderfynu a fydd yn cynnal asesiad newydd o anghenion EHC"},
    "reassessment.final": {"en": "finish reassessing and issue the EHC plan",
                           "cy": "gwblhau'r asesiad newydd a chyhoeddi'r cynllun EHC"},
    "transfer.notify_family": {"en": "tell you about the EHC plan after your move",
                               "cy": "ddweud wrthych am y cynllun EHC wedi i chi symud"},
    "transfer.review": {"en": "review the EHC plan after your move",
                        "cy": "adolygu'r cynllun EHC wedi i chi symud"},
    "mediation.arrange": {"en": "arrange mediation", "cy": "drefnu cyfryngu"},
    "mediation.health_notice": {"en": "pass your mediation request to health",
                                "cy": "anfon eich cais am gyfryngu at y gwasanaeth iechyd"},
    "mediation.agreement": {"en": "do what was agreed in mediation",
                            "cy": "wneud yr hyn a gytunwyd yn y cyfryngu"},
    "tribunal.assess_notify": {"en": "confirm the assessment the tribunal ordered",
                               "cy": "gadarnhau'r asesiad a orchmynnwyd gan y tribiwnlys"},
    "tribunal.assess_no_plan": {"en": "decide on a plan after the tribunal order",
                                "cy": "benderfynu am gynllun EHC wedi gorchymyn y tribiwnlys"},
    "tribunal.assess_final": {"en": "issue the EHC plan after the tribunal's order",
                              "cy": "gyhoeddi'r cynllun EHC wedi gorchymyn y tribiwnlys"},
    "tribunal.plan_draft": {"en": "send the draft EHC plan the tribunal ordered",
                            "cy": "anfon y cynllun EHC drafft a orchmynnwyd gan y tribiwnlys"},
    "tribunal.plan_final": {"en": "issue the EHC plan the tribunal ordered",
                            "cy": "gyhoeddi'r cynllun EHC a orchmynnwyd gan y tribiwnlys"},
    "tribunal.amend": {"en": "amend the EHC plan as the tribunal ordered",
                       "cy": "ddiwygio'r cynllun EHC fel y gorchmynnodd y tribiwnlys"},
    "tribunal.school_name": {"en": "change the school named, as ordered",
                             "cy": "newid yr ysgol neu'r coleg a enwir, fel y gorchmynnwyd"},
    "tribunal.continue": {"en": "keep the EHC plan, as the tribunal ordered",
                          "cy": "gadw'r cynllun EHC, fel y gorchmynnodd y tribiwnlys"},
    "tribunal.recommendation_response": {"en": "respond to the tribunal's recommendation",
                                         "cy": "ymateb i argymhelliad y tribiwnlys"},
    "unopposed.assess_notify": {"en": "confirm the assessment after the appeal",
                                "cy": "gadarnhau'r asesiad wedi'r apel"},
    "unopposed.assess_no_plan": {"en": "decide about an EHC plan after the appeal",
                                 "cy": "benderfynu am gynllun EHC wedi'r apel"},
    "unopposed.assess_final": {"en": "issue the EHC plan after the appeal",
                               "cy": "gyhoeddi'r cynllun EHC wedi'r apel"},
    "unopposed.amend": {"en": "amend the EHC plan after the appeal",
                        "cy": "ddiwygio'r cynllun EHC wedi'r apel"},
}
