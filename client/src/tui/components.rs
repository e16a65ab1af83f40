//! The widgets, one per file. Each is a tuirealm [`Component`] that draws
//! the data the view hands it (`set`) and an [`AppComponent`] that turns
//! terminal events into [`Msg`]s. Keys every screen shares, network events
//! (arriving through the async port) and ticks are mapped by [`global`].
//!
//! [`Component`]: tuirealm::component::Component
//! [`AppComponent`]: tuirealm::component::AppComponent

pub(crate) mod input;
pub(crate) mod login;
pub(crate) mod members;
pub(crate) mod messages;
pub(crate) mod popup;
pub(crate) mod rooms;
pub(crate) mod status;
pub(crate) mod transfers;

use tuirealm::event::{Event, Key, KeyEvent, KeyModifiers};

use super::app::{Msg, UserEvent};

/// Events every focused component maps the same way.
pub(crate) fn global(ev: &Event<UserEvent>) -> Option<Msg> {
    match ev {
        Event::User(UserEvent::Net(n)) => Some(Msg::Net(n.clone())),
        Event::WindowResize(..) | Event::FocusGained => Some(Msg::Redraw),
        Event::Tick => Some(Msg::Tick),
        Event::Keyboard(KeyEvent { code: Key::Char('c' | 'C'), modifiers })
            if modifiers.contains(KeyModifiers::CONTROL) =>
        {
            Some(Msg::Quit)
        }
        _ => None,
    }
}

/// The parts of [`tuirealm::component::Component`] that are the same for
/// every widget here: props storage, no state, no commands.
macro_rules! props_boilerplate {
    () => {
        fn query<'a>(
            &'a self,
            attr: tuirealm::props::Attribute,
        ) -> Option<tuirealm::props::QueryResult<'a>> {
            self.props.get_for_query(attr)
        }

        fn attr(&mut self, attr: tuirealm::props::Attribute, value: tuirealm::props::AttrValue) {
            self.props.set(attr, value);
        }

        fn state(&self) -> tuirealm::state::State {
            tuirealm::state::State::None
        }

        fn perform(&mut self, cmd: tuirealm::command::Cmd) -> tuirealm::command::CmdResult {
            tuirealm::command::CmdResult::Invalid(cmd)
        }
    };
}
pub(crate) use props_boilerplate;
