# Builds the lifeos binary (protos are compiled by protox: no protoc needed).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin lifeos

FROM debian:bookworm-slim
RUN useradd --system --create-home lifeos
COPY --from=build /src/target/release/lifeos /usr/local/bin/lifeos
USER lifeos
WORKDIR /home/lifeos
EXPOSE 50051
ENTRYPOINT ["lifeos"]
CMD ["serve", "--listen", "0.0.0.0:50051"]
