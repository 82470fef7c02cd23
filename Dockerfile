# The clawdis image: the prebuilt static binary FROM scratch. No shell, no package manager,
# no libc; CA roots are compiled into the binary. Build it with deploy/docker/build-images,
# which compiles the binaries (CGO_ENABLED=0) into a staging directory used as the build
# context; nothing is pulled.
#
#   docker run -d --name clawdis -v clawdis-state:/state -p 127.0.0.1:18789:18789 \
#     -e CLAWDIS_GATEWAY_TOKEN=... clawdis:latest
FROM scratch AS clawdis
COPY clawdis /usr/local/bin/clawdis
# Writable directories owned by the unprivileged user; a named volume mounted on /state
# starts out with this ownership.
COPY --chown=65532:65532 empty /state
COPY --chown=65532:65532 empty /tmp
ENV CLAWDIS_STATE_DIR=/state HOME=/state TMPDIR=/tmp
USER 65532:65532
VOLUME /state
# 18789 gateway WebSocket, 18788 WebChat, 4222 bus (clawdis bus / --bus-listen)
EXPOSE 18789 18788 4222
HEALTHCHECK --interval=10s --timeout=6s --start-period=20s --retries=3 \
  CMD ["/usr/local/bin/clawdis", "gateway", "health", "--timeout", "5s"]
ENTRYPOINT ["/usr/local/bin/clawdis"]
# Listening beyond the container's loopback needs a token: -e CLAWDIS_GATEWAY_TOKEN=...
CMD ["gateway", "--bind", "0.0.0.0"]

# The demo image adds the stand-ins of the compose stack's external world: a scripted agent
# command and the fake Telegram Bot API (tools/scriptagent, tools/fakebotapi).
FROM clawdis AS demo
COPY scriptagent fakebotapi /usr/local/bin/
