//! The event-stream decoder against the AWS SDK's own codec (aws-smithy-eventstream): frames
//! the SDK writes, with a header of every type, decode here; frames written here (what the
//! mocks send as Lambda) decode there, byte for byte the same headers and payload.

use aws_smithy_eventstream::frame::{read_message_from, write_message_to};
use aws_smithy_types::event_stream::{Header, HeaderValue as SdkValue, Message as SdkMessage};
use aws_smithy_types::DateTime;
use lambda_gateway::aws::event_stream::{
    decode, invoke_complete, payload_chunk, Event, HeaderValue,
};

#[test]
fn frames_written_by_the_sdk_decode_here() {
    let uuid: u128 = 0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10;
    let message = SdkMessage::new(&b"the payload"[..])
        .add_header(Header::new(
            ":message-type",
            SdkValue::String("event".into()),
        ))
        .add_header(Header::new(
            ":event-type",
            SdkValue::String("PayloadChunk".into()),
        ))
        .add_header(Header::new("bool", SdkValue::Bool(false)))
        .add_header(Header::new("byte", SdkValue::Byte(-3)))
        .add_header(Header::new("short", SdkValue::Int16(-300)))
        .add_header(Header::new("int", SdkValue::Int32(70_000)))
        .add_header(Header::new("long", SdkValue::Int64(-5_000_000_000)))
        .add_header(Header::new(
            "bytes",
            SdkValue::ByteArray(vec![0u8, 255].into()),
        ))
        .add_header(Header::new(
            "time",
            SdkValue::Timestamp(DateTime::from_millis(1_700_000_000_123)),
        ))
        .add_header(Header::new("uuid", SdkValue::Uuid(uuid)));
    let mut wire = Vec::new();
    write_message_to(&message, &mut wire).expect("the SDK writes");
    // Two messages back to back, read one after the other.
    let one = wire.clone();
    wire.extend_from_slice(&one);
    let (m, used) = decode(&wire).expect("valid").expect("complete");
    assert_eq!(used, one.len());
    assert_eq!(m.event(), Event::PayloadChunk(b"the payload"));
    let values: Vec<(String, HeaderValue<'_>)> = m
        .headers()
        .map(|(n, v)| (String::from_utf8_lossy(n).into_owned(), v))
        .collect();
    let uuid_bytes = uuid.to_be_bytes();
    assert_eq!(
        values[2..],
        [
            ("bool".to_string(), HeaderValue::Bool(false)),
            ("byte".to_string(), HeaderValue::Int(-3)),
            ("short".to_string(), HeaderValue::Int(-300)),
            ("int".to_string(), HeaderValue::Int(70_000)),
            ("long".to_string(), HeaderValue::Int(-5_000_000_000)),
            ("bytes".to_string(), HeaderValue::Bytes(&[0, 255])),
            ("time".to_string(), HeaderValue::Int(1_700_000_000_123)),
            ("uuid".to_string(), HeaderValue::Uuid(&uuid_bytes)),
        ]
    );
    let (second, used2) = decode(&wire[used..]).expect("valid").expect("complete");
    assert_eq!((second, used2), (m, used));
}

#[test]
fn frames_written_here_decode_in_the_sdk() {
    let mut wire = Vec::new();
    payload_chunk(&mut wire, b"chunk bytes \x00\x01");
    let first = wire.len();
    invoke_complete(
        &mut wire,
        br#"{"ErrorCode":"Unhandled","ErrorDetails":"boom"}"#,
    );
    let chunk = read_message_from(&wire[..first]).expect("the SDK reads the chunk");
    assert_eq!(chunk.payload().as_ref(), b"chunk bytes \x00\x01");
    let header = |m: &SdkMessage, name: &str| {
        m.headers()
            .iter()
            .find(|h| h.name().as_str() == name)
            .and_then(|h| h.value().as_string().ok().map(|s| s.as_str().to_string()))
    };
    assert_eq!(
        header(&chunk, ":event-type").as_deref(),
        Some("PayloadChunk")
    );
    assert_eq!(header(&chunk, ":message-type").as_deref(), Some("event"));
    let done = read_message_from(&wire[first..]).expect("the SDK reads the end");
    assert_eq!(
        header(&done, ":event-type").as_deref(),
        Some("InvokeComplete")
    );
    assert_eq!(
        done.payload().as_ref(),
        br#"{"ErrorCode":"Unhandled","ErrorDetails":"boom"}"#
    );
}
