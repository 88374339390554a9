"""The inbound call flow: the only place that sequences a call."""
