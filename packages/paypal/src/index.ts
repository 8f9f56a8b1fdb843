// Shared PayPal REST pieces (OAuth token, webhook signature verification), used by ingest and payouts.
