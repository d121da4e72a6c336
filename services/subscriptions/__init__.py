"""The subscriptions service: agencies receive the case events they are entitled to,
redacted by their data-sharing profile, as signed webhooks or on their own AMQP queue
(docs/subscriptions.md)."""
