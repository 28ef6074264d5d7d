#!/bin/sh
# The compose RabbitMQ's entrypoint (deploy/rabbitmq/Dockerfile). Runs as
# the rabbitmq user. Writes RABBITMQ_CONFIG_FILE from the environment on
# every start - the default account (RABBITMQ_DEFAULT_USER and
# RABBITMQ_DEFAULT_PASS, both required; RabbitMQ creates it only when its
# database is new) and listeners on every address - then becomes the
# server, logging to stdout.
set -eu

for key in RABBITMQ_DEFAULT_USER RABBITMQ_DEFAULT_PASS; do
	value=$(printenv "$key" || true)
	if [ -z "$value" ]; then
		echo "microshop-rabbitmq: $key is not set" >&2
		exit 2
	fi
	case $value in
	*"
"*)
		echo "microshop-rabbitmq: $key must be one line" >&2
		exit 2
		;;
	esac
done

umask 077
cat >"$RABBITMQ_CONFIG_FILE" <<CONF
# Written by microshop-rabbitmq on every start.
default_user = $RABBITMQ_DEFAULT_USER
default_pass = $RABBITMQ_DEFAULT_PASS
listeners.tcp.default = 5672
management.tcp.port = 15672
log.console = true
log.console.level = info
log.file = false
CONF

exec rabbitmq-server "$@"
