//! The contact book: who a user has added, who asked to add them, whom they blocked, and who may
//! call them (`GET /contacts`, `POST /contacts/{action}`, `POST /contacts/settings`).
//!
//! A contact is a pair of intents: "A wants B" and "B wants A". One of them alone is a request
//! (outgoing for A, incoming for B); both make B and A contacts, who see each other's presence.

use serde::{Deserialize, Serialize};

/// How far along the pair of intents between a user and one other name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactState {
    /// Both added each other: presence is shared, either may call the other.
    Mutual,
    /// They asked to add you; accept or decline.
    Incoming,
    /// You asked to add them; they have not accepted (yet).
    Outgoing,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub username: String,
    pub state: ContactState,
}

/// Who may call a user: a setting of theirs. Calls refused by it look to the caller exactly like
/// calls to someone offline.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallsFrom {
    /// Anyone who knows the username (the seed's pages call by typed name).
    #[default]
    Anyone,
    /// Only mutual contacts.
    Contacts,
}

impl CallsFrom {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Anyone => "anyone",
            Self::Contacts => "contacts",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Anyone, Self::Contacts]
            .into_iter()
            .find(|option| option.as_str() == text)
    }
}

/// `GET /contacts`: the whole book, contacts sorted by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactBook {
    pub contacts: Vec<Contact>,
    pub blocked: Vec<String>,
    pub calls_from: CallsFrom,
}

/// The body of every `POST /contacts/{action}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactTarget {
    pub username: String,
}

/// The body of `POST /contacts/settings`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactSettings {
    pub calls_from: CallsFrom,
}

/// What `POST /contacts/{action}` does with the name in its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContactAction {
    /// Ask them to be a contact; accepts at once if they already asked you. The answer is the same
    /// whether or not the name exists or has blocked you.
    Request,
    Accept,
    /// Say no to their request; they are not told.
    Decline,
    /// End the contact, or withdraw your request, from both sides.
    Remove,
    /// Remove them and refuse their requests, calls and presence from now on.
    Block,
    Unblock,
}

impl ContactAction {
    pub const ALL: [Self; 6] = [
        Self::Request,
        Self::Accept,
        Self::Decline,
        Self::Remove,
        Self::Block,
        Self::Unblock,
    ];

    /// Its path segment: `POST /contacts/<this>`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Request => "request",
            Self::Accept => "accept",
            Self::Decline => "decline",
            Self::Remove => "remove",
            Self::Block => "block",
            Self::Unblock => "unblock",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|action| action.as_str() == text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_and_settings_round_trip_through_their_wire_names() {
        for action in ContactAction::ALL {
            assert_eq!(ContactAction::parse(action.as_str()), Some(action));
        }
        assert_eq!(ContactAction::parse("befriend"), None);
        for calls_from in [CallsFrom::Anyone, CallsFrom::Contacts] {
            assert_eq!(CallsFrom::parse(calls_from.as_str()), Some(calls_from));
            let json = serde_json::to_string(&calls_from).unwrap();
            assert_eq!(json, format!("\"{}\"", calls_from.as_str()));
        }
    }

    #[test]
    fn a_book_reads_as_documented() {
        let book: ContactBook = serde_json::from_str(
            r#"{"contacts":[{"username":"bo","state":"incoming"}],"blocked":["mallory"],
                "calls_from":"contacts"}"#,
        )
        .unwrap();
        assert_eq!(book.contacts[0].state, ContactState::Incoming);
        assert_eq!(book.calls_from, CallsFrom::Contacts);
    }
}
