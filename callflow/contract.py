"""The dialplan contract: script paths and channel variables shared with the dialplan."""

from __future__ import annotations

# Dialplan contexts of extensions_callflow.conf.
CONTEXT_INBOUND = "callflow-inbound"

# FastAGI script paths (agi://host:port/<path>?query).
SCRIPT_INBOUND = "/inbound"

# Query parameters the dialplan adds to the script path.
QUERY_DNIS = "dnis"  # ${EXTEN}, URI-encoded: the tracking number dialled
QUERY_LINKEDID = "linkedid"  # ${CHANNEL(linkedid)}: ties the agent legs to this call

# Variables the dialplan sets on the caller's channel before the AGI.
VAR_DNIS = "CALLFLOW_DNIS"
VAR_CALLER_CHAN = "CALLFLOW_CALLER_CHAN"  # inherited by agent legs (for the answer gosub)

# Variables the daemon sets; the dialplan reads CALLFLOW_STATUS after the AGI returns.
VAR_STATUS = "CALLFLOW_STATUS"
# The daemon has finished with the call: no fallback. Not set after an answered Dial: the
# dialplan treats DIALSTATUS=ANSWER as finished too (one AGI round trip less per answered call).
STATUS_DONE = "done"
# Set on the caller's channel by [callflow-dialing], which each Dial runs first (Dial's B()
# option: no AGI command of its own), for the sysadmin's own CDR/CEL and logs.
VAR_CAMPAIGN = "CALLFLOW_CAMPAIGN"
VAR_TARGET = "CALLFLOW_TARGET"  # the step's targets, joined by '&'
DIALING_GOSUB = "callflow-dialing"
VAR_CALLBACK = "CALLFLOW_CALLBACK"  # "1" on calls originated by `callflow callback`

# Written on the caller's channel by [callflow-answered] when an agent leg answers.
ANSWER_GOSUB = "callflow-answered"
ACCEPT_GOSUB = "callflow-accept"  # the same, then press 1 to accept (pay-per-call buyers)

# What the daemon reads after a Dial, in one GET FULL VARIABLE: Asterisk's DIALSTATUS and
# HANGUPCAUSE, the agent's answer instant written by [callflow-answered], and which leg of a
# simultaneous Dial answered (DIALEDPEERNUMBER: "agent1", "+15551234567@pstn-trunk"), and when
# the agent pressed 1 to accept (written by [callflow-accept]).
# Set by app_voicemail: SUCCESS (a message was left), USEREXIT or FAILED (no such box, ...).
VAR_VMSTATUS = "VMSTATUS"
VOICEMAIL_REACHED = frozenset({"SUCCESS", "USEREXIT"})

DIAL_OUTCOME_SEP = "|"
DIAL_OUTCOME = (
    "${DIALSTATUS}|${HANGUPCAUSE}|${SHARED(CALLFLOW_AGENT_ANSWERED_AT)}|${DIALEDPEERNUMBER}"
    "|${SHARED(CALLFLOW_ACCEPTED_AT)}"
)
