//! Round trips of every request, reply and event through JSON, plus the
//! exact wire shapes that `docs/PROTOCOL.md` promises.

use proptest::prelude::*;
use serde_json::json;

use crate::*;

fn round_trip_request(op: Op) {
    let req = Request { id: 7, op };
    let bytes = serde_json::to_vec(&req).expect("serializes");
    assert_eq!(Request::parse(&bytes).expect("parses"), req);
}

#[test]
fn every_op_round_trips() {
    let creds = Credentials { tenant: "acme".into(), user: "ann".into(), password: "pw".into() };
    let room = RoomReq { room: "general".into() };
    for op in [
        Op::Hello(Hello { version: 1, client: "qchat/0.1".into() }),
        Op::Register(creds.clone()),
        Op::Login(creds),
        Op::Resume(Resume { token: "t".into() }),
        Op::Logout,
        Op::Rooms,
        Op::RoomCreate(room.clone()),
        Op::RoomJoin(room.clone()),
        Op::RoomLeave(room.clone()),
        Op::Members(room),
        Op::Send(SendReq { room: "r".into(), client_msg_id: "c1".into(), body: "hi 👋".into() }),
        Op::History(HistoryReq { room: "r".into(), before_seq: Some(9), limit: Some(2) }),
        Op::History(HistoryReq { room: "r".into(), before_seq: None, limit: None }),
        Op::Sync(SyncReq { room: "r".into(), after_seq: 3, limit: None }),
        Op::Read(ReadReq { room: "r".into(), seq: 3 }),
        Op::Ping,
        Op::Quit(Quit { reason: Some("bye".into()) }),
        Op::Quit(Quit::default()),
        Op::UploadBegin(UploadBeginReq {
            room: "r".into(),
            name: "a b.pdf".into(),
            size: 9,
            hash: "0".repeat(64),
            client_key: None,
        }),
        Op::UploadBegin(UploadBeginReq {
            room: "r".into(),
            name: "b".into(),
            size: 0,
            hash: "1".repeat(64),
            client_key: Some("k1".into()),
        }),
        Op::UploadStatus(UploadStatusReq { upload_id: "u1".into() }),
        Op::FileGet(FileGetReq { file_id: 4, offset: 100 }),
    ] {
        round_trip_request(op);
    }
}

#[test]
fn wire_shapes_match_the_spec() {
    let req =
        Request::parse(br#"{"id":1,"op":"send","room":"general","client_msg_id":"a","body":"hi"}"#)
            .expect("parses");
    assert_eq!(req.id, 1);
    assert_eq!(req.op.name(), "send");
    assert!(matches!(
        Request::parse(br#"{"id":2,"op":"ping"}"#),
        Ok(Request { id: 2, op: Op::Ping })
    ));

    let ok = Response::ok(1, &SendOk { seq: 5, ts: 10, duplicate: false }).expect("ok");
    assert_eq!(
        serde_json::to_value(&ok).expect("json"),
        json!({"re": 1, "ok": {"seq": 5, "ts": 10, "duplicate": false}})
    );
    let err = Response::err(Some(2), ErrorCode::NotFound, "no such room");
    assert_eq!(
        serde_json::to_value(&err).expect("json"),
        json!({"re": 2, "err": {"code": "not_found", "message": "no such room"}})
    );
    let ev = Event::Presence(Presence { user: "bob".into(), online: false, reason: None });
    assert_eq!(
        serde_json::to_value(&ev).expect("json"),
        json!({"ev": "presence", "user": "bob", "online": false})
    );
}

#[test]
fn server_messages_round_trip() {
    let msg = Message {
        room: "general".into(),
        seq: 1,
        sender: "ann".into(),
        ts: 1_700_000_000_000,
        kind: MessageKind::Text,
        body: "日本語 and emoji 🎉".into(),
        client_msg_id: Some("c".into()),
        file: None,
    };
    let file = FileInfo { id: 3, name: "a.pdf".into(), size: 10, hash: "ab".repeat(32) };
    let file_msg = Message {
        kind: MessageKind::File,
        body: "a.pdf".into(),
        file: Some(file.clone()),
        ..msg.clone()
    };
    let all = [
        ServerMsg::Response(Response::empty(3)),
        ServerMsg::Response(Response::err(None, ErrorCode::BadRequest, "x")),
        ServerMsg::Response(
            Response::ok(
                4,
                &MessagesOk { room: "general".into(), messages: vec![msg.clone()], more: true },
            )
            .expect("ok"),
        ),
        ServerMsg::Event(Event::Message(msg)),
        ServerMsg::Event(Event::Presence(Presence {
            user: "a".into(),
            online: true,
            reason: Some("r".into()),
        })),
        ServerMsg::Event(Event::Member(MemberEvent {
            room: "g".into(),
            user: "a".into(),
            joined: true,
        })),
        ServerMsg::Event(Event::Lagged(Lagged { room: "g".into() })),
        ServerMsg::Event(Event::Message(file_msg)),
        ServerMsg::Event(Event::UploadDone(UploadDone {
            upload_id: "u".into(),
            file: file.clone(),
            seq: 2,
        })),
        ServerMsg::Event(Event::UploadFailed(UploadFailed {
            upload_id: "u".into(),
            code: ErrorCode::QuotaExceeded,
            message: "over quota".into(),
        })),
        ServerMsg::Response(
            Response::ok(
                5,
                &UploadBeginOk {
                    upload_id: "u".into(),
                    offset: 0,
                    complete: true,
                    file: Some(file.clone()),
                    seq: Some(2),
                },
            )
            .expect("ok"),
        ),
        ServerMsg::Response(
            Response::ok(6, &UploadStatusOk { upload_id: "u".into(), offset: 1, size: 2 })
                .expect("ok"),
        ),
        ServerMsg::Response(Response::ok(7, &FileGetOk { file, offset: 0 }).expect("ok")),
    ];
    for m in all {
        let bytes = match &m {
            ServerMsg::Response(r) => serde_json::to_vec(r),
            ServerMsg::Event(e) => serde_json::to_vec(e),
        }
        .expect("serializes");
        assert_eq!(ServerMsg::parse(&bytes).expect("parses"), m);
    }
}

#[test]
fn bad_requests_keep_their_id_when_possible() {
    let e = Request::parse(br#"{"id":9,"op":"nope"}"#).expect_err("unknown op");
    assert_eq!(e.id, Some(9));
    assert_eq!(e.error.code, ErrorCode::BadRequest);
    let e = Request::parse(br#"{"id":10,"op":"send","room":"r"}"#).expect_err("missing field");
    assert_eq!(e.id, Some(10));
    let e = Request::parse(b"{not json").expect_err("syntax");
    assert_eq!(e.id, None);
    assert!(e.error.message.starts_with("invalid JSON"));
    let deep = "[".repeat(10_000);
    assert_eq!(Request::parse(deep.as_bytes()).expect_err("too deep").id, None);
}

#[test]
fn secrets_are_redacted_in_debug() {
    let c = Credentials { tenant: "t".into(), user: "u".into(), password: "hunter22".into() };
    assert!(!format!("{c:?}").contains("hunter22"));
    let r = Resume { token: "sekrit".into() };
    assert!(!format!("{r:?}").contains("sekrit"));
    let l = LoginOk { tenant: "t".into(), user: "u".into(), token: "sekrit".into() };
    assert!(!format!("{l:?}").contains("sekrit"));
}

proptest! {
    #[test]
    fn arbitrary_payloads_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = Request::parse(&bytes);
        let _ = ServerMsg::parse(&bytes);
    }

    #[test]
    fn send_round_trips(id in any::<u64>(), room in "[a-z]{1,16}", cmid in "[a-zA-Z0-9-]{1,64}", body in any::<String>()) {
        let req = Request { id, op: Op::Send(SendReq { room, client_msg_id: cmid, body }) };
        let bytes = encode_json(&req).expect("encodes");
        let mut buf = bytes::BytesMut::from(&bytes[..]);
        let payload = decode_frame(&mut buf).expect("ok").expect("complete");
        prop_assert_eq!(Request::parse(&payload).expect("parses"), req);
    }
}
