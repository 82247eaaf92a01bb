# Container recipe for the kamstrup daemon, laid out like the .deb: /usr/bin/kamstrup, config in
# /etc/kamstrup/kamstrup.toml, history in /var/lib/kamstrup, user kamstrup in group dialout.
#   docker build -t kamstrup-bridge .
#   docker run -d --name kamstrup --device /dev/ttyUSB0 --group-add dialout \
#     -v /srv/kamstrup/kamstrup.toml:/etc/kamstrup/kamstrup.toml:ro -v /srv/kamstrup/data:/var/lib/kamstrup \
#     -p 127.0.0.1:8080:8080 kamstrup-bridge
# Start from packaging/kamstrup.toml (the .deb's config: storage in /var/lib/kamstrup); inside the
# container set web.listen = "0.0.0.0:8080" (the -p above still publishes it on the host's
# loopback only). A static musl binary from scripts/release.sh works the same: COPY it instead.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --profile release-small --locked --bin kamstrup

FROM debian:bookworm-slim
RUN useradd --system --no-create-home --home-dir /var/lib/kamstrup --shell /usr/sbin/nologin \
      --groups dialout kamstrup \
 && install -d -o kamstrup -g kamstrup -m 0750 /var/lib/kamstrup \
 && install -d /etc/kamstrup
COPY --from=build /src/target/release-small/kamstrup /usr/bin/kamstrup
COPY packaging/kamstrup.toml /etc/kamstrup/kamstrup.toml
COPY kamstrup.example.toml /usr/share/doc/kamstrup-bridge/kamstrup.example.toml
USER kamstrup
WORKDIR /var/lib/kamstrup
VOLUME /var/lib/kamstrup
EXPOSE 8080
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/kamstrup"]
CMD ["run", "--config", "/etc/kamstrup/kamstrup.toml"]
