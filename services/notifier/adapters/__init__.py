"""Channel clients: GOV.UK Notify, SMTP, a generic HTTP SMS gateway and a local file sink."""
