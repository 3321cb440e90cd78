# gitopsd container image: build on Debian 12, run on Debian 12 slim as a
# non-root user.  docker build -t gitopsd:0.1.0 .
#
# The runtime holds only the shared libraries gitopsd and gitopsctl link
# (checked by test/integration/test_deploy_manifests.py), CA certificates
# for HTTPS remotes, registries and notifiers, and tini as PID 1 so signals
# reach gitopsd and the children of render commands are reaped.  Add
# kustomize or helm in a derived image if apps use render.command.

FROM debian:12 AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      make gcc pkg-config libc6-dev \
      libevent-dev libgit2-dev libssh2-1-dev libcurl4-openssl-dev libyaml-dev \
      libcjson-dev libssl-dev libsqlite3-dev libpq-dev libsystemd-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Makefile VERSION ./
COPY include/ include/
COPY daemon/ daemon/
COPY handlers/ handlers/
COPY notify/ notify/
COPY tools/ tools/
COPY web/ web/
COPY scripts/embed-web.sh scripts/
COPY config/ config/
COPY systemd/ systemd/
COPY man/ man/
RUN make -j2 B=build all \
 && make B=build DESTDIR=/out install

FROM debian:12-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      ca-certificates tini \
      libevent-2.1-7 libevent-openssl-2.1-7 libevent-pthreads-2.1-7 \
      libgit2-1.5 libssh2-1 libcurl4 libyaml-0-2 libcjson1 libssl3 libsqlite3-0 \
      libpq5 libsystemd0 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 gitopsd \
 && useradd --system --uid 10001 --gid gitopsd --no-create-home \
      --home-dir /var/lib/gitopsd --shell /usr/sbin/nologin gitopsd \
 && install -d -m 0755 /etc/gitopsd /etc/gitopsd/config /etc/gitopsd/secrets \
 && install -d -o gitopsd -g gitopsd -m 0700 /var/lib/gitopsd \
      /var/lib/gitopsd/repos
COPY --from=build /out/usr/local/bin/gitopsd /out/usr/local/bin/gitopsctl \
     /usr/local/bin/
COPY --from=build /out/usr/local/share/man/ /usr/local/share/man/
USER 10001:10001
WORKDIR /var/lib/gitopsd
VOLUME ["/var/lib/gitopsd"]
# 8080: webhooks and /healthz; 9090: admin API, /readyz, /metrics.
EXPOSE 8080 9090
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/gitopsd"]
CMD ["-c", "/etc/gitopsd/config/gitopsd.yaml"]
