//! How the bus's items travel in NATS messages: a kind byte and the
//! sending node's id, then for a message its tenant, room, seq and room
//! label (name and id) and the event frame exactly as the clients get it
//! (so it is serialized once, on the node that committed it); for another
//! room event the room, its label and the frame; for a typing event the
//! room, the typing user, the label and the frame; for an event to one
//! user the tenant, user, label and frame; for a control message its JSON.

use bytes::{Buf as _, BufMut as _, Bytes, BytesMut};

use crate::db::{RoomId, RoomLabel, TenantId, UserId};
use crate::hub::remote::{Control, Item, NodeId};

/// The subjects every node publishes on and subscribes to (`qchat.>`).
pub(super) const SUBJECT_ALL: &str = "qchat.>";
/// Control messages' subject.
pub(super) const SUBJECT_CONTROL: &str = "qchat.c";

/// The subject of a room's messages and events.
pub(super) fn room_subject(room: RoomId) -> String {
    format!("qchat.r.{}", room.0)
}

/// The subject of events to one user.
pub(super) fn user_subject(user: UserId) -> String {
    format!("qchat.u.{}", user.0)
}

const MESSAGE: u8 = b'M';
const EVENT: u8 = b'E';
const CONTROL: u8 = b'C';
const USER: u8 = b'U';
const TYPING: u8 = b'T';

fn header(kind: u8, node: NodeId, capacity: usize) -> BytesMut {
    let mut b = BytesMut::with_capacity(9 + capacity);
    b.put_u8(kind);
    b.put_u64(node);
    b
}

fn put_label(b: &mut BytesMut, label: &RoomLabel) {
    put_name(b, &label.name);
    put_name(b, &label.id);
}

fn put_name(b: &mut BytesMut, name: &str) {
    // Room names are far below 64 KiB; a longer one is cut, never wrapped.
    let bytes = &name.as_bytes()[..name.len().min(usize::from(u16::MAX))];
    b.put_u16(bytes.len() as u16);
    b.put_slice(bytes);
}

/// A committed message.
pub(super) fn message(
    node: NodeId,
    tenant: TenantId,
    room: RoomId,
    seq: u64,
    label: &RoomLabel,
    frame: &[u8],
) -> Bytes {
    let mut b = header(MESSAGE, node, 28 + label.name.len() + label.id.len() + frame.len());
    b.put_i64(tenant.0);
    b.put_i64(room.0);
    b.put_u64(seq);
    put_label(&mut b, label);
    b.put_slice(frame);
    b.freeze()
}

/// Another room event.
pub(super) fn room_event(node: NodeId, room: RoomId, label: &RoomLabel, frame: &[u8]) -> Bytes {
    let mut b = header(EVENT, node, 12 + label.name.len() + label.id.len() + frame.len());
    b.put_i64(room.0);
    put_label(&mut b, label);
    b.put_slice(frame);
    b.freeze()
}

/// A typing event.
pub(super) fn typing(
    node: NodeId,
    room: RoomId,
    user: UserId,
    label: &RoomLabel,
    frame: &[u8],
) -> Bytes {
    let mut b = header(TYPING, node, 20 + label.name.len() + label.id.len() + frame.len());
    b.put_i64(room.0);
    b.put_i64(user.0);
    put_label(&mut b, label);
    b.put_slice(frame);
    b.freeze()
}

/// An event to every connection of one user.
pub(super) fn to_user(
    node: NodeId,
    tenant: TenantId,
    user: UserId,
    label: &RoomLabel,
    frame: &[u8],
) -> Bytes {
    let mut b = header(USER, node, 20 + label.name.len() + label.id.len() + frame.len());
    b.put_i64(tenant.0);
    b.put_i64(user.0);
    put_label(&mut b, label);
    b.put_slice(frame);
    b.freeze()
}

/// A control message.
///
/// # Errors
/// When it cannot be serialized (never, for these types).
pub(super) fn control(node: NodeId, c: &Control) -> Result<Bytes, serde_json::Error> {
    let json = serde_json::to_vec(c)?;
    let mut b = header(CONTROL, node, json.len());
    b.put_slice(&json);
    Ok(b.freeze())
}

fn take_label(p: &mut Bytes) -> Option<RoomLabel> {
    let name = take_name(p)?;
    let id = take_name(p)?;
    Some(RoomLabel { name, id })
}

fn take_name(p: &mut Bytes) -> Option<String> {
    if p.remaining() < 2 {
        return None;
    }
    let n = usize::from(p.get_u16());
    if p.remaining() < n {
        return None;
    }
    String::from_utf8(p.split_to(n).to_vec()).ok()
}

/// Reads one payload: the sender and the item, `None` when malformed.
pub(super) fn decode(mut p: Bytes) -> Option<(NodeId, Item)> {
    if p.remaining() < 9 {
        return None;
    }
    let kind = p.get_u8();
    let node = p.get_u64();
    let item = match kind {
        MESSAGE => {
            if p.remaining() < 24 {
                return None;
            }
            let tenant = TenantId(p.get_i64());
            let room = RoomId(p.get_i64());
            let seq = p.get_u64();
            let label = take_label(&mut p)?;
            Item::Message { tenant, room, seq, label, frame: p }
        }
        EVENT => {
            if p.remaining() < 8 {
                return None;
            }
            let room = RoomId(p.get_i64());
            let label = take_label(&mut p)?;
            Item::RoomEvent { room, label, frame: p }
        }
        USER => {
            if p.remaining() < 16 {
                return None;
            }
            let tenant = TenantId(p.get_i64());
            let user = UserId(p.get_i64());
            let label = take_label(&mut p)?;
            Item::ToUser { tenant, user, label, frame: p }
        }
        TYPING => {
            if p.remaining() < 16 {
                return None;
            }
            let room = RoomId(p.get_i64());
            let user = UserId(p.get_i64());
            let label = take_label(&mut p)?;
            Item::Typing { room, user, label, frame: p }
        }
        CONTROL => Item::Control(serde_json::from_slice(&p).ok()?),
        _ => return None,
    };
    Some((node, item))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::remote::OnlineUser;

    fn label(name: &str) -> RoomLabel {
        RoomLabel { name: name.into(), id: "+00000000000000ab".into() }
    }

    #[test]
    fn items_survive_the_trip() {
        let frame = b"\0\0\0\x02{}";
        let m = message(7, TenantId(1), RoomId(2), 3, &label("général"), frame);
        assert_eq!(
            decode(m),
            Some((
                7,
                Item::Message {
                    tenant: TenantId(1),
                    room: RoomId(2),
                    seq: 3,
                    label: label("général"),
                    frame: Bytes::from_static(frame),
                }
            ))
        );
        let e = room_event(8, RoomId(2), &label("r"), frame);
        assert_eq!(
            decode(e),
            Some((
                8,
                Item::RoomEvent {
                    room: RoomId(2),
                    label: label("r"),
                    frame: Bytes::from_static(frame)
                }
            ))
        );
        let u = to_user(9, TenantId(1), UserId(4), &label("r"), frame);
        assert_eq!(
            decode(u),
            Some((
                9,
                Item::ToUser {
                    tenant: TenantId(1),
                    user: UserId(4),
                    label: label("r"),
                    frame: Bytes::from_static(frame)
                }
            ))
        );
        let t = typing(9, RoomId(2), UserId(4), &label("r"), frame);
        assert_eq!(
            decode(t),
            Some((
                9,
                Item::Typing {
                    room: RoomId(2),
                    user: UserId(4),
                    label: label("r"),
                    frame: Bytes::from_static(frame)
                }
            ))
        );
        let c = Control::Presence {
            user: OnlineUser { tenant: 1, user: 2, name: "ann".into(), rooms: vec![3] },
            online: true,
            reason: None,
        };
        assert_eq!(decode(control(9, &c).expect("json")), Some((9, Item::Control(c))));
    }

    #[test]
    fn malformed_payloads_are_refused() {
        assert_eq!(decode(Bytes::from_static(b"M")), None);
        assert_eq!(decode(Bytes::from_static(b"X\0\0\0\0\0\0\0\x01")), None);
        let mut short = message(1, TenantId(1), RoomId(1), 1, &label("room"), b"").to_vec();
        short.truncate(30);
        assert_eq!(decode(Bytes::from(short)), None);
        assert_eq!(decode(Bytes::from_static(b"C\0\0\0\0\0\0\0\x01{no")), None);
        assert_eq!(decode(Bytes::from_static(b"T\0\0\0\0\0\0\0\x01\0\0")), None);
    }
}
