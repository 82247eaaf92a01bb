# Container recipe for the kamstrup daemon.
#   docker build -t kamstrup-bridge .
#   docker run -d --name kamstrup --device /dev/ttyUSB0 \
#     -v /srv/kamstrup/kamstrup.toml:/etc/kamstrup/kamstrup.toml:ro -v /srv/kamstrup/data:/var/lib/kamstrup \
#     -p 127.0.0.1:8080:8080 kamstrup-bridge
# In the config: storage.path = "/var/lib/kamstrup/kamstrup.db", web.listen = "0.0.0.0:8080"
# (inside the container; the -p above still publishes it on the host's loopback only).
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin kamstrup

FROM debian:bookworm-slim
RUN useradd --system --no-create-home --groups dialout kamstrup \
 && mkdir -p /var/lib/kamstrup /etc/kamstrup && chown kamstrup /var/lib/kamstrup
COPY --from=build /src/target/release/kamstrup /usr/local/bin/kamstrup
COPY kamstrup.example.toml /etc/kamstrup/kamstrup.example.toml
USER kamstrup
VOLUME /var/lib/kamstrup
EXPOSE 8080
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/kamstrup"]
CMD ["run", "--config", "/etc/kamstrup/kamstrup.toml"]
