# Builds the carelog binary and ships it on a slim Debian image.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p carelog

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 carelog
COPY --from=build /src/target/release/carelog /usr/local/bin/carelog
USER carelog
ENV LOG_FORMAT=json CARELOG_BIND=0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["carelog"]
