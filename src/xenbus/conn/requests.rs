//! One method per XenStore request the crate sends, over [`XenbusConn::request`].

use super::{Error, XenbusConn};
use crate::xenbus::transport::Transport;
use crate::xenbus::wire::{self, Reply, Request, WireError, XsError};

impl<T: Transport> XenbusConn<T> {
    /// Value of `path`, borrowed from the receive buffer.
    pub fn read(&mut self, path: &str) -> Result<&[u8], Error> {
        match self.request(&Request::Read(path))? {
            Reply::Value(v) => Ok(v),
            _ => Err(Error::Wire(WireError::UnexpectedType)),
        }
    }

    /// Value of `path` as a string (lossy for non-UTF-8 values).
    pub fn read_string(&mut self, path: &str) -> Result<String, Error> {
        self.read(path)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }

    pub fn write(&mut self, path: &str, value: &[u8]) -> Result<(), Error> {
        self.request(&Request::Write { path, value }).map(|_| ())
    }

    pub fn mkdir(&mut self, path: &str) -> Result<(), Error> {
        self.request(&Request::Mkdir(path)).map(|_| ())
    }

    /// Removes `path` and everything below it; a node that is already gone is not an error.
    pub fn rm(&mut self, path: &str) -> Result<(), Error> {
        match self.request(&Request::Rm(path)) {
            Ok(_) | Err(Error::Xs(XsError::Enoent)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Child names of `path`.
    pub fn directory(&mut self, path: &str) -> Result<wire::Entries<'_>, Error> {
        self.request(&Request::Directory(path)).map(|r| r.entries())
    }

    /// Permission entries of `path` (owner first), e.g. `n0`, `r5`.
    pub fn get_perms(&mut self, path: &str) -> Result<wire::Entries<'_>, Error> {
        self.request(&Request::GetPerms(path)).map(|r| r.entries())
    }

    pub fn watch(&mut self, path: &str, token: &str) -> Result<(), Error> {
        self.request(&Request::Watch { path, token }).map(|_| ())
    }

    pub fn unwatch(&mut self, path: &str, token: &str) -> Result<(), Error> {
        self.request(&Request::Unwatch { path, token }).map(|_| ())
    }

    /// Starts a transaction; requests carry its id until [`XenbusConn::transaction_end`].
    pub fn transaction_start(&mut self) -> Result<u32, Error> {
        self.tx_id = 0;
        match self.request(&Request::TransactionStart)? {
            Reply::TransactionId(id) => {
                self.tx_id = id;
                Ok(id)
            }
            _ => Err(Error::Wire(WireError::UnexpectedType)),
        }
    }

    /// Commits (or aborts) the open transaction. `Error::Xs(XsError::Eagain)` means it
    /// conflicted with another change and must be redone from the start.
    pub fn transaction_end(&mut self, commit: bool) -> Result<(), Error> {
        let r = self
            .request(&Request::TransactionEnd { commit })
            .map(|_| ());
        self.tx_id = 0;
        r
    }

    /// The domain id this connection belongs to, from its home's `domid` node.
    pub fn read_domid(&mut self) -> Result<u32, Error> {
        let v = self.read("domid")?;
        std::str::from_utf8(v)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or(Error::Wire(WireError::BadPayload))
    }
}
