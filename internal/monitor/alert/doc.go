// Package alert evaluates alerting rules in process: a rule compares one metric of a
// model (a drift score, a quality metric, the error rate, a latency quantile) with a
// threshold, goes inactive → pending → firing → resolved as Prometheus's rules do,
// posts firing and resolved notifications to webhooks in Alertmanager's webhook
// format (so existing receivers work), and on firing can start retraining (a webhook
// or a command) and abort a rollout (a hook). Values come from a Source; Requests is
// a Source fed as a core.Tap, for error rate and latency.
package alert
