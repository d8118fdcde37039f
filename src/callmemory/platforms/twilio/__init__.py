"""Twilio Programmable Voice: form-encoded webhooks in, TwiML out (see docs/twilio.md)."""
