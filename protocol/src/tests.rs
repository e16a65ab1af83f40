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
    let creds = Credentials {
        tenant: "acme".into(),
        user: "ann".into(),
        password: "pw".into(),
        client: Some("qchat/0.1".into()),
    };
    let room = RoomReq { room: "general".into() };
    for op in [
        Op::Hello(Hello { version: 1, client: "qchat/0.1".into(), tenant: None }),
        Op::Hello(Hello { version: 1, client: String::new(), tenant: Some("acme".into()) }),
        Op::Register(creds.clone()),
        Op::Login(creds),
        Op::Resume(Resume { token: "t".into(), client: None }),
        Op::Profile(ProfileReq::default()),
        Op::Profile(ProfileReq { user: Some("bob".into()) }),
        Op::ProfileSet(ProfileSetReq { display_name: Some("Ann A.".into()) }),
        Op::ProfileSet(ProfileSetReq { display_name: None }),
        Op::Passwd(PasswdReq { old_password: "a".repeat(8), new_password: "b".repeat(8) }),
        Op::Sessions(SessionsReq::default()),
        Op::Sessions(SessionsReq { after: Some("0123456789abcdef".into()) }),
        Op::SessionRevoke(SessionRevokeReq { session: "0123456789abcdef".into() }),
        Op::Search(SearchReq { query: "hello".into(), ..SearchReq::default() }),
        Op::Search(SearchReq {
            query: "deploy* friday".into(),
            room: Some("general".into()),
            from: Some("bob".into()),
            after: Some(1),
            before: Some(2),
            has_file: true,
            cursor: Some("c".into()),
            limit: Some(5),
        }),
        Op::Logout,
        Op::Rooms(RoomsReq::default()),
        Op::Rooms(RoomsReq { after: Some("general".into()) }),
        Op::RoomCreate(RoomCreateReq { room: "general".into(), private: false }),
        Op::RoomCreate(RoomCreateReq { room: "plans".into(), private: true }),
        Op::DmOpen(DmOpenReq { users: vec!["bob".into(), "carol".into()] }),
        Op::RoomInvite(UserReq { room: "plans".into(), user: "bob".into() }),
        Op::RoomKick(ModerateReq { room: "p".into(), user: "bob".into(), reason: None }),
        Op::RoomBan(ModerateReq {
            room: "+0123456789abcdef".into(),
            user: "bob".into(),
            reason: Some("spam".into()),
        }),
        Op::RoomUnban(UserReq { room: "plans".into(), user: "bob".into() }),
        Op::RoomRole(RoleReq { room: "p".into(), user: "bob".into(), role: Role::Moderator }),
        Op::RoomTopic(TopicReq { room: "p".into(), topic: "launch 🚀".into() }),
        Op::RoomRename(RenameReq { room: "p".into(), name: "q".into() }),
        Op::RoomPrivate(PrivateReq { room: "p".into(), private: true }),
        Op::RoomArchive(ArchiveReq { room: "p".into(), archived: false }),
        Op::RoomDelete(room.clone()),
        Op::RoomJoin(room.clone()),
        Op::RoomLeave(room.clone()),
        Op::Members(MembersReq { room: "general".into(), after: None }),
        Op::Members(MembersReq { room: "general".into(), after: Some("ann".into()) }),
        Op::Send(SendReq {
            room: "r".into(),
            client_msg_id: "c1".into(),
            body: "hi 👋".into(),
            reply_to: None,
        }),
        Op::Send(SendReq {
            room: "r".into(),
            client_msg_id: "c2".into(),
            body: "yes".into(),
            reply_to: Some(4),
        }),
        Op::MessageEdit(EditReq { room: "r".into(), seq: 4, body: "fixed".into() }),
        Op::MessageDelete(MessageReq { room: "r".into(), seq: 4 }),
        Op::MessageReact(ReactReq { room: "r".into(), seq: 4, emoji: "🎉".into(), remove: true }),
        Op::Thread(ThreadReq { room: "r".into(), seq: 4, after_seq: Some(5), limit: Some(9) }),
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
            hash: Some("0".repeat(64)),
            head: None,
            client_key: None,
        }),
        Op::UploadBegin(UploadBeginReq {
            room: "r".into(),
            name: "b".into(),
            size: 0,
            hash: None,
            head: Some("1".repeat(64)),
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

    let ok = Response::ok(1, &SendOk { seq: 5, ts: 10, duplicate: false, room_mention: None })
        .expect("ok");
    assert_eq!(
        serde_json::to_value(&ok).expect("json"),
        json!({"re": 1, "ok": {"seq": 5, "ts": 10, "duplicate": false}})
    );
    // `hello`: `tenant` and `open_registration` are optional both ways, so
    // old clients and old servers keep working.
    let old = Request::parse(br#"{"id":3,"op":"hello","version":1}"#).expect("parses");
    assert_eq!(old.op, Op::Hello(Hello { version: 1, client: String::new(), tenant: None }));
    // Every field of `hello` is optional (issue 16 §1.6): no version is 1.
    let bare = Request::parse(br#"{"id":4,"op":"hello"}"#).expect("parses");
    assert_eq!(bare.op, Op::Hello(Hello { version: 1, client: String::new(), tenant: None }));
    let hello = HelloOk {
        server: "qchatd/0.1.0".into(),
        version: 1,
        max_frame: 1_048_576,
        open_registration: None,
    };
    assert_eq!(
        serde_json::to_value(&hello).expect("json"),
        json!({"server": "qchatd/0.1.0", "version": 1, "max_frame": 1_048_576})
    );
    let asked = HelloOk { open_registration: Some(false), ..hello.clone() };
    assert_eq!(serde_json::to_value(&asked).expect("json")["open_registration"], json!(false));
    let from_old: HelloOk =
        serde_json::from_value(json!({"server": "qchatd/0.1.0", "version": 1, "max_frame": 1}))
            .expect("an old server's reply");
    assert_eq!(from_old.open_registration, None);

    // `rooms` and `members` page with `after`; a request without it, and a
    // reply without `more` (an older server), still parse.
    assert!(matches!(
        Request::parse(br#"{"id":3,"op":"rooms"}"#),
        Ok(Request { id: 3, op: Op::Rooms(RoomsReq { after: None }) })
    ));
    let req = Request::parse(br#"{"id":4,"op":"members","room":"g","after":"ann"}"#).expect("ok");
    assert_eq!(req.op, Op::Members(MembersReq { room: "g".into(), after: Some("ann".into()) }));
    let old: RoomsOk = serde_json::from_value(json!({"rooms": []})).expect("old reply");
    assert!(!old.more);
    let old: MembersOk =
        serde_json::from_value(json!({"room": "g", "members": []})).expect("old reply");
    assert!(!old.more);

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
fn access_fields_are_optional_both_ways() {
    // An old server's room and message parse, and a new room's optional
    // fields stay off the wire when unset.
    let old: RoomInfo = serde_json::from_value(
        json!({"name": "g", "joined": true, "last_seq": 1, "read_seq": 0, "unread": 1}),
    )
    .expect("an old server's room");
    assert_eq!((old.kind, old.key(), old.display(), old.role), (RoomKind::Public, "g", "g", None));
    assert_eq!(
        serde_json::to_value(&old).expect("json"),
        json!({"name": "g", "joined": true, "last_seq": 1, "read_seq": 0, "unread": 1,
               "mentions": 0, "kind": "public"})
    );
    let m: Message = serde_json::from_value(json!({"room": "g", "seq": 1, "sender": "a",
        "ts": 1, "kind": "system", "body": "x",
        "change": {"type": "something_new", "by": "a"}}))
    .expect("an unknown change");
    assert_eq!(m.change.as_ref().map(|c| c.kind), Some(ChangeKind::Unknown));
    assert_eq!(m.room_key(), "g");
    let r: RoomRemoved =
        serde_json::from_value(json!({"room": "g", "room_id": "+0123456789abcdef",
            "reason": "vanished"}))
        .expect("an unknown reason");
    assert_eq!(r.reason, RemovedReason::Unknown);
    let member: MemberInfo =
        serde_json::from_value(json!({"user": "a", "online": false})).expect("old member");
    assert_eq!(member.role, None);
    let create = Request::parse(br#"{"id":1,"op":"room.create","room":"g"}"#).expect("old create");
    assert_eq!(create.op, Op::RoomCreate(RoomCreateReq { room: "g".into(), private: false }));
}

fn ev(e: Event) -> ServerMsg {
    ServerMsg::Event(Box::new(e))
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
        room_id: None,
        change: None,
        edited: Some(1_700_000_000_500),
        deleted: None,
        reply_to: Some(Box::new(ReplyTo {
            seq: 0,
            sender: "bob".into(),
            excerpt: "hi".into(),
            deleted: false,
        })),
        mentions: Some(Box::new(vec!["bob".into(), "@room".into()])),
        reactions: vec![Reaction { emoji: "👍".into(), count: 2, me: true }].into(),
        replies: 3,
    };
    let system = Message {
        kind: MessageKind::System,
        body: "ann banned bob: spam".into(),
        client_msg_id: None,
        room_id: Some("+0123456789abcdef".into()),
        change: Some(Box::new(Change {
            kind: ChangeKind::Banned,
            by: "ann".into(),
            user: Some("bob".into()),
            role: None,
            topic: None,
            name: None,
            reason: Some("spam".into()),
            seq: None,
            body: None,
            emoji: None,
        })),
        ..msg.clone()
    };
    let room = RoomInfo {
        name: "+0123456789abcdef".into(),
        joined: true,
        last_seq: 4,
        read_seq: 2,
        unread: 2,
        mentions: 1,
        id: Some("+0123456789abcdef".into()),
        kind: RoomKind::Dm,
        title: Some("@bob,carol".into()),
        role: Some(Role::Member),
        invited: false,
        topic: Some("t".into()),
        archived: true,
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
        ev(Event::Message(msg)),
        ev(Event::Presence(Presence { user: "a".into(), online: true, reason: Some("r".into()) })),
        ev(Event::Member(MemberEvent { room: "g".into(), user: "a".into(), joined: true })),
        ev(Event::Lagged(Lagged { room: "g".into(), room_id: None })),
        ev(Event::Read(ReadEvent {
            room: "g".into(),
            room_id: "+0123456789abcdef".into(),
            seq: 4,
            last_seq: Some(6),
            unread: Some(0),
            mentions: Some(0),
        })),
        ev(Event::Lagged(Lagged { room: "g".into(), room_id: Some("+0123456789abcdef".into()) })),
        ev(Event::Message(system)),
        ev(Event::Room(RoomEvent { room: room.clone() })),
        ev(Event::RoomRemoved(RoomRemoved {
            room: "+0123456789abcdef".into(),
            room_id: "+0123456789abcdef".into(),
            reason: RemovedReason::Banned,
            by: Some("ann".into()),
        })),
        ServerMsg::Response(Response::ok(8, &RoomOk { room }).expect("ok")),
        ServerMsg::Response(Response::ok(9, &ChangeOk { seq: Some(3) }).expect("ok")),
        ServerMsg::Response(Response::ok(10, &ChangeOk::default()).expect("ok")),
        ServerMsg::Response(
            Response::ok(
                11,
                &MembersOk {
                    room: "g".into(),
                    members: vec![MemberInfo {
                        user: "a".into(),
                        online: true,
                        role: Some(Role::Owner),
                        display_name: Some("Ann A.".into()),
                    }],
                    more: false,
                },
            )
            .expect("ok"),
        ),
        ev(Event::Message(file_msg)),
        ev(Event::UploadDone(UploadDone { upload_id: "u".into(), file: file.clone(), seq: 2 })),
        ev(Event::UploadFailed(UploadFailed {
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
                    hash_required: false,
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

/// Errors quote at most a short, escaped prefix of the input, however
/// large (issue 22: a 1 MiB unknown op was echoed whole, and the reply no
/// longer fit a frame).
#[test]
fn errors_quote_only_a_short_escaped_prefix() {
    let big = "A".repeat(1 << 20);
    let payload = format!(r#"{{"id":3,"op":"{big}\u0007"}}"#);
    let e = Request::parse(payload.as_bytes()).expect_err("unknown op");
    assert_eq!(e.id, Some(3));
    assert!(e.error.message.len() <= MAX_ERROR_MESSAGE_LEN, "{}", e.error.message.len());
    assert!(e.error.message.starts_with("unknown op `AAAA"), "{}", e.error.message);
    assert!(e.error.message.contains("A…`"), "{}", e.error.message);
    let e = Request::parse(br#"{"id":4,"op":"p\u0000\u001bing"}"#).expect_err("unknown op");
    assert_eq!(e.error.message.split(';').next(), Some("unknown op `p\\u{0}\\u{1b}ing`"));
    let payload = format!(r#"{{"id":5,"op":"history","room":"r","limit":"{big}"}}"#);
    let e = Request::parse(payload.as_bytes()).expect_err("mistyped");
    assert_eq!(e.id, Some(5));
    assert!(e.error.message.len() <= 120, "{}", e.error.message);
    assert!(e.error.message.contains("expected u32"), "{}", e.error.message);
    let payload = format!(r#"{{"id":6,"op":"ping","x":"{big}"#);
    let e = Request::parse(payload.as_bytes()).expect_err("truncated");
    assert!(e.error.message.len() <= MAX_ERROR_MESSAGE_LEN);
    // Every refusal stays short, whatever the field.
    for field in ["room", "user", "tenant", "body", "client_msg_id", "after", "upload_id"] {
        let payload = format!(r#"{{"id":7,"op":"send","{field}":{{"{big}":1}}}}"#);
        let e = Request::parse(payload.as_bytes()).expect_err("invalid");
        assert!(e.error.message.len() <= MAX_ERROR_MESSAGE_LEN, "{field}");
    }
}

/// Request ids end at 2^53 - 1 (PROTOCOL.md section 3); a larger one is
/// refused with no id to answer to.
#[test]
fn ids_end_at_two_to_the_53_minus_one() {
    let ok = format!(r#"{{"id":{MAX_REQUEST_ID},"op":"ping"}}"#);
    assert_eq!(Request::parse(ok.as_bytes()).expect("largest id").id, MAX_REQUEST_ID);
    for id in [MAX_REQUEST_ID + 1, u64::MAX] {
        let e = Request::parse(format!(r#"{{"id":{id},"op":"ping"}}"#).as_bytes())
            .expect_err("id out of range");
        assert_eq!((e.id, e.error.code), (None, ErrorCode::BadRequest));
        let e = Request::parse(format!(r#"{{"id":{id},"op":"nope"}}"#).as_bytes())
            .expect_err("unknown op");
        assert_eq!(e.id, None, "an id out of range is not answered to");
    }
}

/// Found by `cargo fuzz run request_parse` (docs/RELIABILITY.md): `[666]`
/// was answered with `re: 666`, because a derived struct also reads a JSON
/// array; the spec answers anything but an object with `re: null`.
#[test]
fn fuzz_regression_only_objects_carry_an_id() {
    for payload in [&b"[666]"[..], b" [7,\"ping\"]", b"7", b"\"id\""] {
        let e = Request::parse(payload).expect_err("not an object");
        assert_eq!(e.id, None, "{}", String::from_utf8_lossy(payload));
    }
    let e = Request::parse(b" \r\n\t{\"id\":5,\"op\":\"nope\"}").expect_err("unknown op");
    assert_eq!(e.id, Some(5));
}

/// Issue 16 §1.2: one rule for `re` — the id exactly when the payload is
/// well-formed JSON (UTF-8, at most [`MAX_REQUEST_DEPTH`] levels) with an
/// object on top holding an integer `id` in range; else `null`. Invalid
/// UTF-8 and deep nesting used to keep the id.
#[test]
fn re_is_the_id_only_for_well_formed_objects() {
    let nested = |levels: usize| {
        let inner = levels - 1;
        format!(r#"{{"id":7,"op":"ping","x":{}{}}}"#, "[".repeat(inner), "]".repeat(inner))
    };
    // The limit is serde_json's own: the deepest allowed parses.
    assert!(Request::parse(nested(MAX_REQUEST_DEPTH).as_bytes()).is_ok());
    let e = Request::parse(nested(MAX_REQUEST_DEPTH + 1).as_bytes()).expect_err("too deep");
    assert_eq!(e.id, None, "{}", e.error.message);
    let too_deep = format!(r#"{{"id":7,"op":"nope","x":{}}}"#, "[".repeat(200));
    assert_eq!(Request::parse(too_deep.as_bytes()).expect_err("broken").id, None);
    let e = Request::parse(b"{\"id\":8,\"op\":\"ping\",\"x\":\"\xff\"}").expect_err("not UTF-8");
    assert_eq!(e.id, None);
    for (payload, id) in [
        (&br#"{"id":9,"op":"nope"}"#[..], Some(9)),
        (br#"{"id":10,"op":"send","room":"r"}"#, Some(10)),
        (br#"{"id":11,"op":"ping","x":"\ud800"}"#, Some(11)),
        (br#"{"id":9007199254740991,"op":"nope"}"#, Some(9_007_199_254_740_991)),
        (br#"{"id":9007199254740992,"op":"nope"}"#, None),
        (br#"{"id":12.0,"op":"ping"}"#, None),
        (br#"{"id":-1,"op":"ping"}"#, None),
        (br#"{"id":"13","op":"ping"}"#, None),
        (br#"{"id":14,"id":15,"op":"ping"}"#, None),
        (br#"{"id":16,"op":"ping""#, None),
        (br#"{"op":"ping"}"#, None),
    ] {
        let e = Request::parse(payload).expect_err("refused");
        assert_eq!(e.id, id, "{}", String::from_utf8_lossy(payload));
    }
}

/// Requests past [`MAX_REQUEST_VALUES`] are refused before parsing (with
/// their id), and commas, brackets and quotes inside strings do not count.
#[test]
fn value_budget() {
    let mut big = br#"{"id":3,"op":"ping","x":["#.to_vec();
    for _ in 0..MAX_REQUEST_VALUES {
        big.extend_from_slice(b"[],");
    }
    big.extend_from_slice(b"[]]}");
    let e = Request::parse(&big).expect_err("too many values");
    assert_eq!(e.id, Some(3));
    assert!(e.error.message.contains("JSON values"), "{}", e.error.message);
    let fits = format!(r#"{{"id":4,"op":"ping","x":[{}0]}}"#, "0,".repeat(MAX_REQUEST_VALUES - 8));
    assert!(Request::parse(fits.as_bytes()).is_ok());
    let body = "[{,\\\"".repeat(20_000);
    let req = Request {
        id: 5,
        op: Op::Send(SendReq { room: "r".into(), client_msg_id: "c".into(), body, reply_to: None }),
    };
    let bytes = serde_json::to_vec(&req).expect("serializes");
    assert_eq!(Request::parse(&bytes).expect("strings do not count"), req);
}

/// Issue 16 §1.12: a message kind this version does not know reads as
/// `system`, so a newer server's messages do not break older clients.
#[test]
fn unknown_message_kinds_read_as_system() {
    let m: Message = serde_json::from_str(
        r#"{"room":"r","seq":1,"sender":"","ts":0,"kind":"poll","body":"ann opened a poll"}"#,
    )
    .expect("parses");
    assert_eq!(m.kind, MessageKind::System);
    assert_eq!(serde_json::to_value(MessageKind::System).expect("json"), json!("system"));
}

#[test]
fn secrets_are_redacted_in_debug() {
    let c = Credentials {
        tenant: "t".into(),
        user: "u".into(),
        password: "hunter22".into(),
        client: None,
    };
    assert!(!format!("{c:?}").contains("hunter22"));
    let r = Resume { token: "sekrit".into(), client: None };
    let p = PasswdReq { old_password: "hunter22".into(), new_password: "hunter33".into() };
    assert!(!format!("{p:?}").contains("hunter"));
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

    /// Proptest twin of the `request_parse` fuzz target: whatever a frame
    /// holds, a request that parses round-trips and a refused one carries
    /// the payload's own id or none.
    #[test]
    fn parse_is_consistent(payload in request_like()) {
        match Request::parse(payload.as_bytes()) {
            Ok(req) => {
                let bytes = serde_json::to_vec(&req).expect("serializes");
                prop_assert_eq!(Request::parse(&bytes).expect("parses"), req);
            }
            Err(e) => {
                prop_assert_eq!(e.error.code, ErrorCode::BadRequest);
                if let (Some(id), Ok(v)) = (e.id, serde_json::from_str::<serde_json::Value>(&payload)) {
                    prop_assert_eq!(v["id"].as_u64(), Some(id));
                }
            }
        }
    }

    #[test]
    fn send_round_trips(id in 0..=MAX_REQUEST_ID, room in "[a-z]{1,16}", cmid in "[a-zA-Z0-9-]{1,64}", body in any::<String>()) {
        let req = Request { id, op: Op::Send(SendReq { room, client_msg_id: cmid, body, reply_to: None }) };
        let bytes = encode_json(&req).expect("encodes");
        let mut buf = bytes::BytesMut::from(&bytes[..]);
        let payload = decode_frame(&mut buf).expect("ok").expect("complete");
        prop_assert_eq!(Request::parse(&payload).expect("parses"), req);
    }
}

/// JSON-ish text built from request pieces, so mutations land near valid
/// requests: ids of every shape, every op name, fields of the wrong type,
/// arrays, nesting, junk.
fn request_like() -> impl Strategy<Value = String> {
    let id = prop_oneof![
        (0u64..1000).prop_map(|n| n.to_string()),
        Just("-1".to_owned()),
        Just("1.5".to_owned()),
        Just("\"7\"".to_owned()),
        Just("null".to_owned()),
        Just("18446744073709551616".to_owned()),
    ];
    let op = prop::sample::select(vec![
        "hello",
        "register",
        "login",
        "resume",
        "logout",
        "rooms",
        "room.create",
        "room.join",
        "room.leave",
        "members",
        "send",
        "history",
        "sync",
        "read",
        "ping",
        "quit",
        "upload.begin",
        "upload.status",
        "file.get",
        "nope",
    ]);
    let field = prop::sample::select(vec![
        r#""room":"general""#,
        r#""room":7"#,
        r#""client_msg_id":"k""#,
        r#""body":"hi""#,
        r#""body":["x"]"#,
        r#""before_seq":3"#,
        r#""after_seq":0"#,
        r#""limit":500"#,
        r#""seq":1"#,
        r#""tenant":"acme""#,
        r#""user":"ann""#,
        r#""password":"pw""#,
        r#""token":"t""#,
        r#""version":1"#,
        r#""name":"a.txt""#,
        r#""size":9"#,
        r#""hash":"00""#,
        r#""upload_id":"u""#,
        r#""file_id":4"#,
        r#""offset":1"#,
        r#""reason":"bye""#,
        r#""client_key":"c""#,
        r#""x":[[[{}]]]"#,
        r#""id":9"#,
    ]);
    let shape = prop::sample::select(vec!["{{{}}}", "[{{{}}}]", "{{{}}} x", "{{{}", "[@]"]);
    (id, op, prop::collection::vec(field, 0..6), shape).prop_map(|(id, op, fields, shape)| {
        let mut inner = format!(r#""id":{id},"op":"{op}""#);
        for f in fields {
            inner.push(',');
            inner.push_str(f);
        }
        shape
            .replace("{{{}}}", &format!("{{{inner}}}"))
            .replace("{{{}", &format!("{{{inner}"))
            .replace('@', &id)
    })
}

#[test]
fn a_room_follows_messages_and_read_markers() {
    let mut room: RoomInfo = serde_json::from_value(json!({"name": "g", "joined": true,
        "last_seq": 2, "read_seq": 1, "unread": 1, "mentions": 0}))
    .expect("room");
    let msg = |seq: u64, sender: &str, kind: &str, extra: serde_json::Value| -> Message {
        let mut v = json!({"room": "g", "seq": seq, "sender": sender, "ts": 1, "kind": kind,
            "body": "x"});
        if let (Some(v), Some(extra)) = (v.as_object_mut(), extra.as_object()) {
            v.extend(extra.clone());
        }
        serde_json::from_value(v).expect("message")
    };
    room.follow(&msg(3, "bob", "text", json!({})), "ann");
    room.follow(&msg(3, "bob", "text", json!({})), "ann");
    assert_eq!((room.last_seq, room.unread, room.mentions), (3, 2, 0), "once");
    room.follow(&msg(4, "ann", "text", json!({"mentions": ["ann"]})), "ann");
    room.follow(&msg(5, "bob", "system", json!({})), "ann");
    assert_eq!((room.last_seq, room.unread, room.mentions), (5, 2, 0), "own and system: not");
    room.follow(&msg(6, "bob", "file", json!({"mentions": ["ann"]})), "ann");
    room.follow(&msg(7, "carol", "text", json!({"mentions": ["@room"]})), "ann");
    room.follow(&msg(8, "carol", "text", json!({"mentions": ["bob"]})), "ann");
    assert_eq!((room.unread, room.mentions), (5, 2));
    let ev = |seq, counts: Option<(u64, u64)>| ReadEvent {
        room: "g".into(),
        room_id: "+0123456789abcdef".into(),
        seq,
        last_seq: None,
        unread: counts.map(|c| c.0),
        mentions: counts.map(|c| c.1),
    };
    room.follow_read(&ev(6, Some((2, 1))), [], "ann");
    assert_eq!((room.read_seq, room.unread, room.mentions), (6, 2, 1));
    room.follow_read(&ev(8, None), [], "ann");
    assert_eq!((room.read_seq, room.unread, room.mentions), (8, 0, 0), "an older server");
}

/// A text message of `sender` in room `g`, mentioning `mentions`.
fn said(seq: u64, sender: &str, mentions: &[&str]) -> Message {
    let mut m = Message::text("g", seq, sender, 1, "x");
    if !mentions.is_empty() {
        m.mentions = Some(Box::new(mentions.iter().map(|n| (*n).to_owned()).collect()));
    }
    m
}

/// A `read` event of room `g`: marker `seq`, counts taken at `last_seq`.
fn read_at(seq: u64, last_seq: u64, unread: u64, mentions: u64) -> ReadEvent {
    ReadEvent {
        room: "g".into(),
        room_id: "+0123456789abcdef".into(),
        seq,
        last_seq: Some(last_seq),
        unread: Some(unread),
        mentions: Some(mentions),
    }
}

fn joined_room(last_seq: u64, read_seq: u64, unread: u64) -> RoomInfo {
    serde_json::from_value(json!({"name": "g", "joined": true, "last_seq": last_seq,
        "read_seq": read_seq, "unread": unread, "mentions": 0}))
    .expect("room")
}

#[test]
fn a_message_heard_before_a_read_event_taken_before_it_still_counts() {
    // Ann reads up to 4 elsewhere; the server counts (nothing unread) at
    // last_seq 4; bob's 5 (mentioning ann) reaches this client first.
    let mut room = joined_room(4, 2, 2);
    let five = said(5, "bob", &["ann"]);
    room.follow(&five, "ann");
    assert_eq!((room.unread, room.mentions), (3, 1));
    room.follow_read(&read_at(4, 4, 0, 0), [&five], "ann");
    assert_eq!((room.read_seq, room.last_seq, room.unread, room.mentions), (4, 5, 1, 1));
}

#[test]
fn a_message_in_a_read_events_counts_is_not_counted_again() {
    // The counts were taken at last_seq 5, after bob's 5 was committed,
    // but the event reaches this client before the message does.
    let mut room = joined_room(4, 2, 2);
    room.follow_read(&read_at(4, 5, 1, 1), [], "ann");
    assert_eq!((room.read_seq, room.last_seq, room.unread, room.mentions), (4, 5, 1, 1));
    room.follow(&said(5, "bob", &["ann"]), "ann");
    assert_eq!((room.unread, room.mentions), (1, 1), "5 is in the figures");
    room.follow(&said(6, "bob", &[]), "ann");
    assert_eq!((room.unread, room.mentions), (2, 1), "6 is not");
}

#[test]
fn a_read_event_behind_the_marker_changes_nothing() {
    // This client read to 6 itself; an event for an older move (to 4)
    // arrives after: its counts include 5 and 6, which are read.
    let mut room = joined_room(6, 6, 0);
    room.follow_read(&read_at(4, 6, 2, 0), [], "ann");
    assert_eq!((room.read_seq, room.unread), (6, 0));
}

#[test]
fn a_room_object_takes_the_messages_heard_past_it() {
    // `rooms` counted at last_seq 4; 5 and 6 were heard before the reply.
    let mut room = joined_room(6, 2, 4);
    let heard = [said(5, "bob", &["@room"]), said(6, "ann", &[])];
    room.refresh(joined_room(4, 2, 2), &heard, "ann");
    assert_eq!((room.last_seq, room.unread, room.mentions), (6, 3, 1));
    // A read event's figures at 7 (never heard), then older ones: kept.
    room.follow_read(&read_at(3, 7, 2, 0), &heard, "ann");
    room.follow_read(&read_at(4, 7, 3, 0), &heard, "ann");
    assert_eq!((room.last_seq, room.read_seq, room.unread), (7, 4, 3));
    let mut older = joined_room(5, 4, 9);
    older.topic = Some("new".into());
    room.refresh(older, &heard, "ann");
    assert_eq!((room.last_seq, room.read_seq, room.unread), (7, 4, 3));
    assert_eq!(room.topic.as_deref(), Some("new"), "the other fields are taken");
}
