# syntax=docker/dockerfile:1
# Build: the SQLite driver is cgo, so the builder has a C toolchain and the
# runtime image has glibc (distroless/base, not static).
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=1 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/fieldsync ./cmd/fieldsync \
 && mkdir -p /out/data

FROM gcr.io/distroless/base-debian12:nonroot
COPY --from=build /out/fieldsync /usr/local/bin/fieldsync
COPY --from=build --chown=nonroot:nonroot /out/data /data
USER nonroot:nonroot
ENV FIELDSYNC_ADDR=0.0.0.0:8080 \
    FIELDSYNC_DATA=/data \
    FIELDSYNC_LOG_FORMAT=json
VOLUME ["/data"]
EXPOSE 8080
# distroless has no shell or curl: the binary checks itself.
HEALTHCHECK --interval=30s --timeout=3s --start-period=5s --retries=3 \
  CMD ["/usr/local/bin/fieldsync", "health", "--url", "http://127.0.0.1:8080/healthz"]
ENTRYPOINT ["/usr/local/bin/fieldsync"]
CMD ["serve"]
