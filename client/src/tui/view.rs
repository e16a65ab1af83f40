//! Layout only: splits the frame, hands each component the data it shows
//! (the message view gets just the visible window), and draws it.

use tuirealm::application::{Application, ApplicationError};
use tuirealm::component::AppComponent;
use tuirealm::ratatui::Frame;
use tuirealm::ratatui::layout::{Constraint, Direction, Layout, Rect};

use super::app::{Id, Msg, UserEvent};
use super::components::input::InputBox;
use super::components::login::LoginView;
use super::components::members::MemberList;
use super::components::messages::MessageView;
use super::components::popup::PopupView;
use super::components::rooms::RoomList;
use super::components::status::{StatusBar, StatusInfo, transfer_summary};
use super::components::transfers::{TransferPanel, TransferRow};
use super::keys::Action;
use super::layout;
use super::model::{Chat, Screen};
use super::timeline::EventsShown;
use super::wrap;

/// The tuirealm application of this UI.
pub(crate) type App = Application<Id, Msg, UserEvent>;

/// Mounts every component (none subscribes: the focused one gets all events).
///
/// # Errors
/// When tuirealm refuses a mount (a duplicate id).
pub(crate) fn mount(app: &mut App, chat: &Chat) -> Result<(), ApplicationError> {
    let t = || chat.theme.clone();
    app.mount(Id::Login, Box::new(LoginView::new(t())), Vec::new())?;
    app.mount(Id::Rooms, Box::new(RoomList::new(t())), Vec::new())?;
    app.mount(Id::Messages, Box::new(MessageView::new(t())), Vec::new())?;
    app.mount(Id::Members, Box::new(MemberList::new(t())), Vec::new())?;
    app.mount(Id::Input, Box::new(InputBox::new(chat.keys.clone(), t())), Vec::new())?;
    app.mount(Id::Status, Box::new(StatusBar::new(t())), Vec::new())?;
    app.mount(Id::Transfers, Box::new(TransferPanel::new(t())), Vec::new())?;
    app.mount(Id::Popup, Box::new(PopupView::new(t())), Vec::new())?;
    focus(app, chat);
    Ok(())
}

/// Gives the keyboard to the form or the input line, by screen.
pub(crate) fn focus(app: &mut App, chat: &Chat) {
    let want = if chat.screen == Screen::Login { Id::Login } else { Id::Input };
    if app.focus() != Some(&want) {
        let _ = app.active(&want);
    }
}

/// Runs `f` on the component `id` if it is a `T`.
fn with<T: AppComponent<Msg, UserEvent>>(app: &mut App, id: Id, f: impl FnOnce(&mut T)) {
    if let Some(c) = app.get_component_mut(&id)
        && let Some(t) = c.as_any_mut().downcast_mut::<T>()
    {
        f(t);
    }
}

/// A rectangle of at most `w`×`h` centred in `area`.
fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

/// The widest an overlay gets.
const POPUP_W: u16 = 76;

/// The widths of the rooms and members panels at a terminal `width`
/// columns wide: both at 72 columns and more (members only when shown),
/// a narrow room list alone from 50, neither below, so the messages keep
/// at least about 40 columns.
pub(crate) fn side_panels(width: u16, show_members: bool) -> (u16, u16) {
    match width {
        100.. => (20, if show_members { 20 } else { 0 }),
        72..=99 => (16, if show_members { 16 } else { 0 }),
        50..=71 => (12, 0),
        _ => (0, 0),
    }
}

/// Draws the whole screen.
pub(crate) fn draw(f: &mut Frame, app: &mut App, chat: &mut Chat) {
    let area = f.area();
    if chat.screen == Screen::Login {
        let form = centered(area, 72, 22);
        with::<LoginView>(app, Id::Login, |c| c.set(&chat.login, chat.have_token()));
        app.view(&Id::Login, f, form);
        return;
    }
    let transfers_h = if chat.transfers.is_empty() {
        0
    } else {
        u16::try_from(chat.transfers.len().min(5)).unwrap_or(5) + 2
    };
    let rows = Layout::default()
        .direction(Direction::Vertical)
        .constraints([
            Constraint::Min(3),
            Constraint::Length(transfers_h),
            Constraint::Length(InputBox::height(&chat.input.text)),
            Constraint::Length(1),
        ])
        .split(area);
    let (side, members_w) = side_panels(area.width, chat.show_members);
    let cols = Layout::default()
        .direction(Direction::Horizontal)
        .constraints([Constraint::Length(side), Constraint::Min(10), Constraint::Length(members_w)])
        .split(rows[0]);

    chat.hits.rooms = if side > 0 { cols[0] } else { Rect::default() };
    chat.hits.messages = cols[1];
    chat.hits.transfers = if transfers_h > 0 { rows[1] } else { Rect::default() };
    chat.hits.popup = None;
    if side > 0 {
        with::<RoomList>(app, Id::Rooms, |c| c.set(&chat.rooms, chat.current));
        app.view(&Id::Rooms, f, cols[0]);
    }

    let inner_w = usize::from(cols[1].width.saturating_sub(2));
    let inner_h = usize::from(cols[1].height.saturating_sub(2));
    chat.viewport = (inner_w, inner_h);
    let thread = chat.thread.as_ref().and_then(|t| Some((t, chat.find(&t.room)?)));
    let (rows_shown, title) = match (thread, chat.room()) {
        (Some((t, i)), _) => {
            let hint = chat.failed_hint();
            let ctx = chat.ctx(&chat.rooms[i], &hint);
            // Every message of a thread is read: no new-messages line.
            let ctx = layout::Ctx { marker_seq: u64::MAX, selected: t.selected, ..ctx };
            let w = layout::window(&t.items, t.anchor, inner_h, &ctx);
            let mut title =
                format!(" Thread of #{} in {} · Esc back ", t.root, chat.rooms[i].title());
            if t.loading {
                title.push_str("· loading… ");
            } else if t.more {
                title.push_str("· more below ");
            }
            (w.rows, title)
        }
        (None, Some(r)) => {
            let hint = chat.failed_hint();
            let w = layout::window(&r.items, r.anchor, inner_h, &chat.ctx(r, &hint));
            let mut title = format!(" {} ", r.title());
            // The topic in the header, cut to leave room for the rest.
            if let Some(topic) = r.info.topic.as_deref().filter(|t| !t.is_empty()) {
                let room_for = inner_w.saturating_sub(wrap::width(&title) + 24).min(60);
                if room_for > 3 {
                    title.push_str(&format!("— {} ", wrap::truncate(topic, room_for)));
                }
            }
            if !r.info.joined {
                title.push_str("(not joined: /join) ");
            } else if r.loading {
                title.push_str("· loading… ");
            } else if w.at_top && !r.more_history {
                title.push_str("· start of the room ");
            }
            if chat.events == EventsShown::Hidden {
                title.push_str("· joins hidden ");
            }
            if !w.at_bottom {
                title.push_str("· End for newest ");
            }
            (w.rows, title)
        }
        (None, None) => (Vec::new(), " no room ".to_owned()),
    };
    fn line_of(r: &layout::Row) -> Option<&layout::Line> {
        match r {
            layout::Row::Line(l) => Some(l),
            _ => None,
        }
    }
    chat.hits.files = rows_shown.iter().map(|r| line_of(r).and_then(|l| l.file)).collect();
    chat.hits.seqs = rows_shown.iter().map(|r| line_of(r).and_then(|l| l.seq)).collect();
    let typing = chat.typing_line();
    with::<MessageView>(app, Id::Messages, |c| c.set(rows_shown, title, typing));
    app.view(&Id::Messages, f, cols[1]);

    if members_w > 0 {
        let members = chat.room().map(|r| r.members.as_slice()).unwrap_or_default();
        with::<MemberList>(app, Id::Members, |c| c.set(members));
        app.view(&Id::Members, f, cols[2]);
    }

    if transfers_h > 0 {
        let rows_t: Vec<TransferRow> = chat.transfers.iter().map(TransferRow::of).collect();
        let clear = chat.keys.hint(Action::ClearTransfers);
        let details = chat.keys.hint(Action::Transfers);
        with::<TransferPanel>(app, Id::Transfers, |c| c.set(rows_t, clear, details));
        app.view(&Id::Transfers, f, rows[1]);
    }

    let input_title = input_title(chat);
    with::<InputBox>(app, Id::Input, |c| {
        c.set(&chat.input.text, chat.input.cursor, &input_title, &chat.candidates);
    });
    app.view(&Id::Input, f, rows[2]);

    let info = StatusInfo {
        conn: Some(chat.conn.clone()),
        who: format!("{}@{}", chat.me, chat.login.fields[1]),
        notice: chat.notice.clone(),
        transfers: transfer_summary(&chat.transfers),
        alerts: chat.notify.label(),
    };
    with::<StatusBar>(app, Id::Status, |c| c.set(info));
    app.view(&Id::Status, f, rows[3]);

    if let Some(p) = &mut chat.popup {
        // Long lines (a transfer's whole error) wrap: count the rows.
        let w = rows[0].width.min(POPUP_W).saturating_sub(2);
        let per_line: Vec<usize> =
            p.lines.iter().map(|l| wrap::wrap(l, usize::from(w)).len().max(1)).collect();
        let text_rows: usize = per_line.iter().sum();
        let h = u16::try_from(text_rows + 2).unwrap_or(u16::MAX);
        let r = centered(rows[0], POPUP_W, h);
        chat.hits.popup = Some(r);
        let visible = usize::from(r.height.saturating_sub(2));
        p.scroll = p.scroll.min(text_rows.saturating_sub(visible));
        // Which line each visible row shows, for clicks.
        chat.hits.popup_lines = per_line
            .iter()
            .enumerate()
            .flat_map(|(i, n)| std::iter::repeat_n(i, *n))
            .skip(p.scroll)
            .take(visible)
            .collect();
        let more = text_rows > visible;
        with::<PopupView>(app, Id::Popup, |c| c.set(Some(&*p), more));
        app.view(&Id::Popup, f, r);
    }
}

/// What the input line's title says: the room, and what Enter does when it
/// is not a plain message (an edit, a reply, the keys for the selected
/// message).
fn input_title(chat: &Chat) -> String {
    use super::model::Compose;
    let room = chat.room().map(|r| r.info.name.clone()).unwrap_or_default();
    let key = |a| chat.keys.hint(a);
    let room_title =
        |r: &str| chat.find(r).map_or(r.to_owned(), |i| chat.rooms[i].title().to_owned());
    match &chat.compose {
        Some(Compose::Edit { room, seq }) => {
            format!("{} · editing #{seq} (Enter saves · Esc cancels)", room_title(room))
        }
        Some(Compose::Reply { room, sender, excerpt, .. }) => {
            let one_line = excerpt.replace('\n', " ");
            let excerpt = if wrap::width(&one_line) > 30 {
                format!("{}…", wrap::truncate(&one_line, 29))
            } else {
                one_line
            };
            format!("{} · replying to {sender}: {excerpt} (Esc cancels)", room_title(room))
        }
        None => match (&chat.thread, chat.selected_seq()) {
            (Some(t), None) => format!("{room} · replying in the thread of #{}", t.root),
            (_, Some(seq)) if chat.popup.is_none() => format!(
                "{room} · #{seq}: {} edit · {} delete · {} reply · {} react · {} thread · Esc",
                key(Action::EditMessage),
                key(Action::DeleteMessage),
                key(Action::Reply),
                key(Action::React),
                key(Action::Thread)
            ),
            _ => room,
        },
    }
}
