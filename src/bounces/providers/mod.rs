//! Provider webhooks (placeholder until the providers land).
