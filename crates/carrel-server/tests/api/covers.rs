//! Cover uploads: each allowed format, content sniffing over names and types,
//! script payloads and polyglots, decompression bombs, oversized bodies,
//! path-traversal names, caching headers.

use std::io::Cursor;

use carrel_core::roles::Role;
use image::{ImageFormat, RgbImage};
use reqwest::Method;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error, backend_tests};

backend_tests!(covers_round_trip_every_format, hostile_uploads_are_refused);

fn image_bytes(format: ImageFormat, w: u32, h: u32) -> Vec<u8> {
    let img = RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 128])
    });
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, format).unwrap();
    out.into_inner()
}

async fn setup(app: &TestApp) -> (String, String) {
    app.create_user("coverist", Role::Librarian).await;
    let token = app.access_token("coverist").await;
    let item: Value = app
        .authed(Method::POST, "/api/v1/items", &token)
        .json(&json!({"title": "Covered"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (token, item["id"].as_str().unwrap().to_owned())
}

async fn upload(
    app: &TestApp,
    token: &str,
    id: &str,
    bytes: Vec<u8>,
    filename: &str,
    mime: &str,
) -> reqwest::Response {
    let form = Form::new().part(
        "file",
        Part::bytes(bytes)
            .file_name(filename.to_owned())
            .mime_str(mime)
            .unwrap(),
    );
    app.authed(Method::PUT, &format!("/api/v1/items/{id}/cover"), token)
        .multipart(form)
        .send()
        .await
        .unwrap()
}

/// A raw HTTP/1.1 upload that declares `declared` body bytes but sends only the
/// multipart part header, then waits for the answer: the server must answer from
/// the declared length alone. (A client writing the whole body races the server's
/// early close and may see a broken pipe instead of the response.)
async fn declared_oversize_upload(
    app: &TestApp,
    token: &str,
    id: &str,
    declared: usize,
) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let authority = app.address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(authority).await.unwrap();
    let head = format!(
        "PUT /api/v1/items/{id}/cover HTTP/1.1\r\nHost: {authority}\r\n\
         Authorization: Bearer {token}\r\n\
         Content-Type: multipart/form-data; boundary=carrelboundary\r\n\
         Content-Length: {declared}\r\n\r\n\
         --carrelboundary\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.png\"\r\n\
         Content-Type: image/png\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let read = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        let mut buf = [0u8; 4096];
        loop {
            let n = stream.read(&mut buf).await.unwrap_or(0);
            response.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&response);
            let complete = text.split_once("\r\n\r\n").is_some_and(|(headers, body)| {
                headers
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                    })
                    .is_some_and(|len| body.len() >= len)
            });
            if n == 0 || complete {
                break;
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no answer while the body was still unsent");
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    (status, text)
}

async fn covers_round_trip_every_format(app: TestApp) {
    let (token, id) = setup(&app).await;
    for (format, expected_type) in [
        (ImageFormat::Jpeg, "image/jpeg"),
        (ImageFormat::Png, "image/png"),
        (ImageFormat::Gif, "image/png"),
        (ImageFormat::WebP, "image/png"),
    ] {
        // The declared type and name lie; only the bytes count.
        let response = upload(
            &app,
            &token,
            &id,
            image_bytes(format, 640, 480),
            "photo.txt",
            "text/plain",
        )
        .await;
        assert_eq!(response.status(), 200, "{format:?}");
        let url = response.json::<Value>().await.unwrap()["cover_url"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(url.starts_with(&format!("/api/v1/items/{id}/cover?v=")));
        let served = app.get(&url).await;
        assert_eq!(served.status(), 200);
        assert_eq!(
            served.headers()["content-type"],
            expected_type,
            "{format:?}"
        );
        assert_eq!(served.headers()["x-content-type-options"], "nosniff");
        assert!(
            served.headers()["cache-control"]
                .to_str()
                .unwrap()
                .contains("max-age=")
        );
        let etag = served.headers()["etag"].to_str().unwrap().to_owned();
        let bytes = served.bytes().await.unwrap();
        let decoded = image::load_from_memory(&bytes).unwrap();
        assert_eq!((decoded.width(), decoded.height()), (640, 480));
        let not_modified = app
            .client
            .get(app.url(&url))
            .header("if-none-match", etag)
            .send()
            .await
            .unwrap();
        assert_eq!(not_modified.status(), 304);
        let thumb = app
            .get(&format!("/api/v1/items/{id}/cover?size=thumb"))
            .await
            .bytes()
            .await
            .unwrap();
        let thumb = image::load_from_memory(&thumb).unwrap();
        assert!(thumb.width() <= 300 && thumb.height() <= 300);
    }
    let item: Value = app
        .get(&format!("/api/v1/items/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert!(item["cover_url"].is_string());
    assert_eq!(
        app.authed(Method::DELETE, &format!("/api/v1/items/{id}/cover"), &token)
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_error(
        app.get(&format!("/api/v1/items/{id}/cover")).await,
        404,
        "RESOURCE_NOT_FOUND",
    )
    .await;
    let events: Value = app
        .authed(Method::GET, &format!("/api/v1/items/{id}/events"), &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        events.to_string().contains("cover_updated")
            && events.to_string().contains("cover_removed")
    );
}

async fn hostile_uploads_are_refused(app: TestApp) {
    let (token, id) = setup(&app).await;
    // A PHP script named .jpg, HTML, SVG with script: refused by content.
    for (bytes, name, mime) in [
        (
            b"<?php system($_GET['c']); ?>".to_vec(),
            "shell.jpg",
            "image/jpeg",
        ),
        (
            b"<html><script>alert(1)</script></html>".to_vec(),
            "page.png",
            "image/png",
        ),
        (
            br#"<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>"#.to_vec(),
            "logo.svg",
            "image/svg+xml",
        ),
        (
            b"\x89PNG\r\n\x1a\ngarbage".to_vec(),
            "broken.png",
            "image/png",
        ),
    ] {
        assert_error(
            upload(&app, &token, &id, bytes, name, mime).await,
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        )
        .await;
    }
    // A polyglot: a real PNG with a script appended is accepted, served without the payload.
    let mut polyglot = image_bytes(ImageFormat::Png, 32, 32);
    polyglot.extend_from_slice(b"<script>alert(document.cookie)</script><?php echo 1; ?>");
    let response = upload(
        &app,
        &token,
        &id,
        polyglot,
        "../../../etc/passwd.png",
        "image/png",
    )
    .await;
    assert_eq!(response.status(), 200);
    let url = response.json::<Value>().await.unwrap()["cover_url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        !url.contains("passwd") && !url.contains(".."),
        "the client's filename is never used: {url}"
    );
    let served = app.get(&url).await.bytes().await.unwrap();
    assert!(
        !served.windows(7).any(|w| w == b"<script") && !served.windows(5).any(|w| w == b"<?php")
    );

    // A decompression bomb: a valid PNG header declaring 100000 x 100000 pixels.
    let mut bomb = image_bytes(ImageFormat::Png, 1, 1);
    bomb[16..20].copy_from_slice(&100_000u32.to_be_bytes());
    bomb[20..24].copy_from_slice(&100_000u32.to_be_bytes());
    let crc = {
        let mut c = 0xFFFF_FFFFu32;
        for b in &bomb[12..29] {
            c ^= u32::from(*b);
            for _ in 0..8 {
                c = if c & 1 == 1 {
                    (c >> 1) ^ 0xEDB8_8320
                } else {
                    c >> 1
                };
            }
        }
        !c
    };
    bomb[29..33].copy_from_slice(&crc.to_be_bytes());
    assert_error(
        upload(&app, &token, &id, bomb, "bomb.png", "image/png").await,
        413,
        "PAYLOAD_TOO_LARGE",
    )
    .await;

    // Over 5 MiB declared: answered 413 before the body is sent at all.
    let (status, body) = declared_oversize_upload(&app, &token, &id, 6 * 1024 * 1024).await;
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("\"PAYLOAD_TOO_LARGE\""), "{body}");

    // A streamed body without Content-Length is cut off at the limit, not buffered whole.
    let chunks = (0..200).map(|_| Ok::<_, std::io::Error>(vec![0u8; 64 * 1024]));
    let body = reqwest::Body::wrap_stream(futures::stream::iter(chunks));
    let form = Form::new().part(
        "file",
        Part::stream(body)
            .file_name("stream.png")
            .mime_str("image/png")
            .unwrap(),
    );
    let response = app
        .authed(Method::PUT, &format!("/api/v1/items/{id}/cover"), &token)
        .multipart(form)
        .send()
        .await;
    match response {
        Ok(response) => assert_eq!(response.status(), 413),
        // The server may close the connection once it has answered 413 mid-upload.
        Err(error) => assert!(error.is_request() || error.is_body(), "{error}"),
    }

    // Patrons cannot upload; anyone may look.
    app.create_user("reader", Role::Patron).await;
    let patron = app.access_token("reader").await;
    assert_error(
        upload(
            &app,
            &patron,
            &id,
            image_bytes(ImageFormat::Png, 8, 8),
            "a.png",
            "image/png",
        )
        .await,
        403,
        "FORBIDDEN",
    )
    .await;
    assert_eq!(app.get(&url).await.status(), 200);
    assert_error(
        app.get(&format!("/api/v1/items/{id}/cover?size=huge"))
            .await,
        400,
        "VALIDATION_ERROR",
    )
    .await;
}
