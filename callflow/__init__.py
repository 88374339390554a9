"""callflow: on-premises call tracking and call routing for Asterisk."""

__version__ = "0.1.0"
