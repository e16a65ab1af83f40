//! The IRC peer of `fanout-irc`: InspIRCd (Debian's `inspircd` package,
//! installed by `bench/run`) on 127.0.0.1 with a configuration of its own in
//! a temporary directory, and light IRC clients over TCP.
//!
//! The server's flood protection is off (no fake lag, a command rate and
//! penalty threshold no client reaches, send and receive queues of megabytes)
//! and it never pings a client during a run, so it relays what it is given
//! as fast as it can. Clients ask for IRCv3 `echo-message`, so a sender gets
//! its own message back as every qchat member does, and every message makes
//! exactly N deliveries on both sides.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::process::{Child, Command};

use super::link::SETUP_STEP;

/// The channel every client joins.
pub(crate) const CHANNEL: &str = "#fanout";
/// Where Debian installs the daemon.
const INSPIRCD: &str = "/usr/sbin/inspircd";

/// A running InspIRCd, killed (by its PID) on drop.
pub(crate) struct Inspircd {
    child: Child,
    /// Where it accepts clients.
    pub(crate) addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Inspircd {
    /// Writes a configuration for a free loopback port and starts the daemon
    /// in the foreground; returns once it accepts connections.
    pub(crate) async fn start() -> anyhow::Result<Self> {
        ensure!(
            Path::new(INSPIRCD).exists(),
            "{INSPIRCD} is missing: run through bench/run, which installs Debian's inspircd"
        );
        let dir = tempfile::Builder::new().prefix("qchat-bench-inspircd").tempdir()?;
        let port = free_tcp_port()?;
        let conf = dir.path().join("inspircd.conf");
        std::fs::write(&conf, config(port, dir.path()))?;
        let log = std::fs::File::create(dir.path().join("stdout.log"))?;
        let child = Command::new(INSPIRCD)
            .arg("--config")
            .arg(&conf)
            .args(["--nofork", "--nopid", "--runasroot"])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .context("starting inspircd")?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut me = Self { child, addr, dir };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            if TcpStream::connect(addr).await.is_ok() {
                return Ok(me);
            }
            if let Some(status) = me.child.try_wait()? {
                bail!("inspircd exited ({status}): {}", me.output());
            }
            if tokio::time::Instant::now() >= deadline {
                bail!("inspircd did not listen within 20 s: {}", me.output());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Its process id.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// What it printed and logged, for errors.
    fn output(&self) -> String {
        let read = |name: &str| std::fs::read_to_string(self.dir.path().join(name));
        format!(
            "{}{}",
            read("stdout.log").unwrap_or_default(),
            read("ircd.log").unwrap_or_default()
        )
    }

    /// Kills it (by its PID) and reaps it.
    pub(crate) async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub(crate) fn free_tcp_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    Ok(l.local_addr()?.port())
}

/// The daemon's configuration: loopback only, no flood limits, no DNS or
/// ident look-ups, no pings during a run, echo-message available.
fn config(port: u16, dir: &Path) -> String {
    let dir = dir.display();
    format!(
        r#"<server name="bench.local" description="qchat-bench peer" network="bench">
<admin name="bench" nick="bench" email="bench@localhost">
<bind address="127.0.0.1" port="{port}" type="clients">
<connect name="bench" allow="127.0.0.1" timeout="60" pingfreq="3600" threshold="1000000"
         commandrate="1000000000" fakelag="no" softsendq="16777216" hardsendq="67108864"
         recvq="1048576" localmax="100000" globalmax="100000" maxconnwarn="no"
         useident="no" resolvehostnames="no" limit="100000">
<channels users="100" opers="100">
<performance netbuffersize="65536" somaxconn="4096" softlimit="18000" clonesonconnect="no"
             quietbursts="yes">
<security hideserver="" userstats="" customversion="" maxtargets="20">
<options prefixquit="Quit: " syntaxhints="no" announcets="no" hostintopic="no"
         splitwhois="no" exemptchanops="">
<dns server="127.0.0.1" timeout="1">
<log method="file" type="* -USERINPUT -USEROUTPUT" level="default" target="{dir}/ircd.log">
<module name="cap">
<module name="ircv3">
<module name="ircv3_echomessage">
"#
    )
}

/// One IRC client connection, registered and in [`CHANNEL`].
pub(crate) struct IrcLink {
    /// Writing half (TCP_NODELAY, as the QUIC clients never delay).
    pub(crate) writer: OwnedWriteHalf,
    /// Reading half, by lines.
    pub(crate) reader: LineReader,
}

/// Connects as `nick`, asks for `echo-message`, registers and joins
/// [`CHANNEL`]; returns once the server has sent the channel's name list.
/// With `quickack`, the client acknowledges every read at once instead of
/// letting Linux delay its ACKs (`TCP_QUICKACK`, set again after each read).
pub(crate) async fn connect(
    addr: SocketAddr,
    nick: &str,
    quickack: bool,
) -> anyhow::Result<IrcLink> {
    let stream = TcpStream::connect(addr).await.context("connecting to inspircd")?;
    stream.set_nodelay(true)?;
    let (read, mut writer) = stream.into_split();
    let mut reader = LineReader::new(read, quickack);
    let hello =
        format!("CAP REQ :echo-message\r\nNICK {nick}\r\nUSER {nick} 0 * :{nick}\r\nCAP END\r\n");
    writer.write_all(hello.as_bytes()).await?;
    let setup = async {
        let mut joined = false;
        loop {
            let Some(line) = reader.next().await? else {
                bail!("inspircd closed the connection during setup");
            };
            match command(&line) {
                // Welcome: registered; now join.
                Some(("001", _)) => {
                    writer.write_all(format!("JOIN {CHANNEL}\r\n").as_bytes()).await?;
                    joined = true;
                }
                Some(("CAP", rest)) if rest.contains("NAK") => bail!("echo-message refused"),
                // End of the name list: in the channel.
                Some(("366", _)) if joined => return Ok(()),
                Some(("ERROR" | "432" | "433" | "451" | "465", _)) => {
                    bail!("inspircd refused {nick}: {}", String::from_utf8_lossy(&line));
                }
                _ => {}
            }
        }
    };
    tokio::time::timeout(SETUP_STEP, setup).await.context("IRC setup timed out")??;
    Ok(IrcLink { writer, reader })
}

/// The command of a server line and what follows it (after the prefix).
fn command(line: &[u8]) -> Option<(&str, &str)> {
    let line = std::str::from_utf8(line).ok()?.trim_end_matches(['\r', '\n']);
    let rest = match line.strip_prefix(':') {
        Some(prefixed) => prefixed.split_once(' ')?.1,
        None => line,
    };
    Some(rest.split_once(' ').unwrap_or((rest, "")))
}

/// The text of a `PRIVMSG` line (`:nick!user@host PRIVMSG #chan :text`).
pub(crate) fn privmsg_text(line: &[u8]) -> Option<&str> {
    let (cmd, rest) = command(line)?;
    if cmd != "PRIVMSG" {
        return None;
    }
    Some(rest.split_once(" :")?.1)
}

/// A message line for [`CHANNEL`].
pub(crate) fn privmsg(text: &str) -> Vec<u8> {
    format!("PRIVMSG {CHANNEL} :{text}\r\n").into_bytes()
}

/// Reads `\n`-terminated lines from a TCP stream.
pub(crate) struct LineReader {
    read: OwnedReadHalf,
    buf: BytesMut,
    quickack: bool,
}

impl LineReader {
    fn new(read: OwnedReadHalf, quickack: bool) -> Self {
        Self { read, buf: BytesMut::with_capacity(64 * 1024), quickack }
    }

    /// The next line, with its line ending; `None` at the end of the stream.
    pub(crate) async fn next(&mut self) -> anyhow::Result<Option<Bytes>> {
        loop {
            if let Some(end) = self.buf.iter().position(|&b| b == b'\n') {
                return Ok(Some(self.buf.split_to(end + 1).freeze()));
            }
            if self.buf.capacity() - self.buf.len() < 4096 {
                self.buf.reserve(64 * 1024);
            }
            if self.read.read_buf(&mut self.buf).await? == 0 {
                return Ok(None);
            }
            if self.quickack {
                let stream: &TcpStream = self.read.as_ref();
                socket2::SockRef::from(stream).set_tcp_quickack(true)?;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_lines_parse() {
        assert_eq!(command(b":bench.local 001 q1 :Welcome\r\n"), Some(("001", "q1 :Welcome")));
        assert_eq!(command(b"PING :bench.local\r\n"), Some(("PING", ":bench.local")));
        assert_eq!(
            privmsg_text(b":q1!q1@127.0.0.1 PRIVMSG #fanout :1:0:7:99:xx\r\n"),
            Some("1:0:7:99:xx")
        );
        assert_eq!(privmsg_text(b":q1!q1@127.0.0.1 JOIN :#fanout\r\n"), None);
        assert_eq!(privmsg(&"x".repeat(3)), b"PRIVMSG #fanout :xxx\r\n");
    }
}
