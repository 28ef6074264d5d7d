# tests/compose/otlpsink.Dockerfile - the span counter that
# docker-compose.otlpsink.yml runs in Jaeger's place (tests/bench/
# otlpsink.c, --by-service): it takes the services' OTLP/HTTP exports on
# 4318 and answers GET with the spans counted per service, on 4318 and on
# 16686, the port the compose file publishes for Jaeger's UI. A test
# stand-in, not part of the suite. Build context: the repository root.
FROM debian:12 AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      gcc libc6-dev libmicrohttpd-dev libjansson-dev \
 && rm -rf /var/lib/apt/lists/*
COPY tests/bench/otlpsink.c /src/
RUN gcc -std=c11 -O2 -Wall -Wextra -Werror -D_GNU_SOURCE -pthread \
      -o /src/otlpsink /src/otlpsink.c -lmicrohttpd -ljansson

FROM debian:12-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libmicrohttpd12 libjansson4 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/otlpsink /usr/local/bin/otlpsink
USER 65534:65534
EXPOSE 4318 16686
ENTRYPOINT ["/usr/local/bin/otlpsink", "--by-service", "--any-address", "4318", "16686"]
