# Dockerfile - one image per service, built the way `make` builds it:
#
#   docker build --build-arg SERVICE=orders -t microshop/orders .
#
# (docker-compose.yml builds the three). The build stage installs the build
# packages of scripts/deps.sh, runs `make <service>` and `make install` into a
# staging folder; the runtime stage is Debian slim with only the shared
# libraries the binary links against, the binary, its migrations (found next
# to it, as after `make install`) and a non-root user. The entrypoint is the
# service: `docker run … microshop/orders migrate` runs a subcommand.
#
# make test builds it for every service and runs the images in the compose
# stack (make compose-test); scripts/check-deploy.sh also rehearses the
# build stage without an engine and checks both package lists against
# deps.sh and the binary.

# ---- build ---------------------------------------------------------------
FROM debian:12 AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential pkg-config make \
      libmicrohttpd-dev libpq-dev librabbitmq-dev libjansson-dev \
      libcurl4-openssl-dev libssl-dev uuid-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Makefile ./
COPY VERSION ./
COPY common/ common/
COPY services/ services/
COPY migrations/ migrations/
ARG SERVICE
RUN test -n "$SERVICE" || { echo "build with --build-arg SERVICE=<name>" >&2; exit 2; }
RUN make -j"$(nproc)" "$SERVICE" \
 && make install SERVICE="$SERVICE" PREFIX=/usr/local DESTDIR=/out UNITDIR=

# ---- runtime -------------------------------------------------------------
FROM debian:12-slim
# The libraries the binary links (libmicrohttpd, libpq, jansson, librabbitmq,
# libcurl, OpenSSL's libcrypto); CA certificates for https:// upstreams; curl
# for the health check.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libmicrohttpd12 libpq5 libjansson4 librabbitmq4 libcurl4 libssl3 \
      ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin microshop
ARG SERVICE
COPY --from=build /out/usr/local/ /usr/local/
# One entrypoint for every image; the binary behind it still finds
# /usr/local/share/microshop/migrations/<service> (it resolves the link).
RUN ln -s "$SERVICE" /usr/local/bin/microshop-service
LABEL org.opencontainers.image.title="microshop-$SERVICE" \
      org.opencontainers.image.description="microshop $SERVICE service"
USER 10001:10001
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/microshop-service"]
