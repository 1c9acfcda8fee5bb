//! `duet user …`: account management from the operator's shell. Passwords come from standard
//! input (one line) or an interactive prompt, never from the command line, where `ps` and shell
//! history would show them.

use std::io::{BufRead, IsTerminal};
use std::time::Duration;

use protocol::{normalize_username, username_key};

use crate::accounts::{Accounts, AccountsError};
use crate::config::{Settings, UserCommand};
use crate::db::{self, DbError};

#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    #[error(transparent)]
    Database(#[from] DbError),
    #[error(transparent)]
    Accounts(#[from] AccountsError),
    #[error("cannot read the password: {0}")]
    Read(#[from] std::io::Error),
    #[error("the two passwords differ")]
    Mismatch,
}

fn read_password() -> Result<String, OperatorError> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ")?;
        let second = rpassword::prompt_password("Again: ")?;
        if first != second {
            return Err(OperatorError::Mismatch);
        }
        Ok(first)
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    }
}

pub async fn run(settings: &Settings, command: UserCommand) -> Result<(), OperatorError> {
    let pool = db::connect(&settings.database_url()).await?;
    let accounts = Accounts::new(pool, 1, 1)?;
    match command {
        UserCommand::Add { name } => {
            let password = read_password()?;
            let username = accounts.register(&name, &password).await?;
            println!("created {username}");
        }
        UserCommand::Passwd { name } => {
            let password = read_password()?;
            accounts.set_password(&name, &password).await?;
            println!("password changed for {name}");
        }
        UserCommand::Delete { name } => {
            // Their logins end first, and a server running on this database closes their sockets
            // when it next looks (it cannot see a deleted account's): then the account goes.
            let key = username_key(&normalize_username(&name).map_err(AccountsError::from)?);
            let now = crate::sessions::unix_ms(time::OffsetDateTime::now_utc()) + 1;
            accounts.end_sessions(&key, now).await?;
            tokio::time::sleep(crate::startup::ENDED_LOGINS_WATCH + Duration::from_secs(1)).await;
            accounts.delete(&name).await?;
            println!("deleted {name}");
        }
        UserCommand::List => {
            for (username, created_at) in accounts.list().await? {
                println!("{username}\t{created_at}");
            }
        }
    }
    Ok(())
}
