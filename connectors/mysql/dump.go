package mysql

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-mysql-org/go-mysql/client"
	gomysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/google/uuid"
)

// errDumpClosed ends the reading of a dump connection Ferry closed.
var errDumpClosed = errors.New("binlog connection closed")

// dumpConn is one binlog dump connection. go-mysql's client connects it
// (handshake, TLS, authentication) and runs its session statements; Ferry
// then sends the replica registration and the dump command, and reads the
// events itself (packetReader, eventFramer) on a goroutine of its own,
// handing each to the feed. go-mysql's BinlogSyncer did the same, but read
// every event through four copies and five allocations, a quarter of the
// CPU of a stream of single-row transactions (issue 18).
//
// Lifecycle: openDump connects and starts the dump; start begins reading,
// and the reading ends with one error on the feed's ended channel (the
// server's, the connection's, the feed's, or errDumpClosed); close ends the
// dump and returns once the reading goroutine has.
type dumpConn struct {
	conn    *client.Conn
	packets packetReader
	kill    func(id uint32) // ends the server's dump thread, from another connection
	closed  atomic.Bool
	once    sync.Once
	done    chan struct{} // closed when the reading goroutine returns; nil before start
}

// dumpStart is where a dump starts: a file position, or a GTID set (a
// MySQL GTID dump, or for MariaDB the statements of setMariaGTIDState
// before a plain dump).
type dumpStart struct {
	pos  position
	gtid gomysql.GTIDSet // nil: by file position
}

// openDump connects a binlog dump connection for f and starts the dump
// at from. Connecting and every statement before the dump are bounded by
// connect_timeout, so a server that accepts the connection and then hangs
// fails the attempt instead of stalling the source.
func (s *Source) openDump(ctx context.Context, f *feed, from dumpStart) (*dumpConn, error) {
	dialer := boundaryDialer(&net.Dialer{Timeout: s.cfg.ConnectTimeout, KeepAlive: 30 * time.Second}, f, s.cfg.ReadCoalesce)
	deadline := time.Now().Add(s.cfg.ConnectTimeout)
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	conn, err := client.ConnectWithDialer(dctx, "", s.cfg.Addr, s.cfg.User, s.cfg.Password.Reveal(), "",
		func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dialer(ctx, network, addr)
			if err == nil {
				err = c.SetDeadline(deadline) // the handshake's too
			}
			return c, err
		},
		func(c *client.Conn) error {
			c.SetTLSConfig(s.tls)
			c.SetAttributes(map[string]string{"_client_role": "binary_log_listener"})
			return nil
		})
	if err != nil {
		return nil, err
	}
	if conn.Compression != gomysql.MYSQL_COMPRESS_NONE { // never asked for
		conn.Close()
		return nil, errors.New("the server compressed the binlog dump connection, which Ferry does not read")
	}
	if err := s.startDump(conn, from); err != nil {
		conn.Close()
		return nil, err
	}
	if err := conn.SetDeadline(time.Time{}); err != nil {
		conn.Close()
		return nil, fmt.Errorf("clear the connection's deadline: %w", err)
	}
	return &dumpConn{conn: conn, kill: s.killDump, packets: packetReader{conn: conn.Conn.Conn, seq: conn.Sequence}}, nil
}

// startDump runs the session statements a replica sends, registers as a
// replica and sends the dump command, as go-mysql's BinlogSyncer does.
func (s *Source) startDump(conn *client.Conn, from dumpStart) error {
	maria := s.info.flavor == gomysql.MariaDBFlavor
	if from.gtid != nil && maria {
		if err := setMariaGTIDState(conn, from.gtid); err != nil {
			return err
		}
	}
	r, err := conn.Execute("SHOW GLOBAL VARIABLES LIKE 'BINLOG_CHECKSUM'")
	if err != nil {
		return fmt.Errorf("read binlog_checksum: %w", err)
	}
	var stmts []string
	if alg, _ := r.GetString(0, 1); alg != "" {
		// A replica that names a checksum is sent every event as it was
		// logged, checksum included (verified by eventFramer); 'NONE'
		// spares the first, artificial rotate event a checksum, as
		// mysqlbinlog asks.
		stmts = append(stmts, "SET @master_binlog_checksum='NONE', @source_binlog_checksum='NONE'")
	}
	if maria {
		stmts = append(stmts, "SET @mariadb_slave_capability=4") // GTID events (MariaDB 10.0.1+)
	}
	if hb := s.cfg.Heartbeat.Nanoseconds(); hb > 0 {
		stmts = append(stmts, fmt.Sprintf("SET @master_heartbeat_period = %d, @source_heartbeat_period = %d", hb, hb))
	}
	id := uuid.NewString()
	stmts = append(stmts, "SET @slave_uuid = '"+id+"', @replica_uuid = '"+id+"'")
	for _, q := range stmts {
		if _, err := conn.Execute(q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	conn.ResetSequence() // each command starts a new exchange
	if err := conn.WritePacket(s.registerCommand()); err != nil {
		return fmt.Errorf("register as a replica: %w", err)
	}
	if _, err := conn.ReadOKPacket(); err != nil {
		return fmt.Errorf("register as a replica: %w", err)
	}
	conn.ResetSequence()
	if err := conn.WritePacket(s.dumpCommand(from, maria)); err != nil {
		return fmt.Errorf("send the binlog dump command: %w", err)
	}
	return nil
}

// setMariaGTIDState prepares a connection for MariaDB's binlog dump by
// GTID, which is the plain dump command after @slave_connect_state is set
// (the server then ignores the file and position).
func setMariaGTIDState(c *client.Conn, set gomysql.GTIDSet) error {
	state := set.String() // digits, dashes and commas: parsed by ParseGTIDSet
	if _, err := c.Execute("SET @slave_connect_state='" + state + "'"); err != nil {
		return fmt.Errorf("set @slave_connect_state to %s: %w", state, err)
	}
	// What MariaDB's replicas set too: the stream fails rather than skip or
	// repeat transactions when the server's binlog disagrees with the state.
	if _, err := c.Execute("SET @slave_gtid_strict_mode=1"); err != nil {
		return fmt.Errorf("set @slave_gtid_strict_mode: %w", err)
	}
	return nil
}

// registerCommand is COM_REGISTER_SLAVE: this replica's server_id and
// host, the user, and the server's port (what SHOW REPLICAS lists). Like
// every packet written with WritePacket, it starts with room for the
// packet header.
func (s *Source) registerCommand() []byte {
	host := s.replicaHost()
	if len(host) > 255 {
		host = host[:255]
	}
	user := s.cfg.User
	if len(user) > 255 {
		user = user[:255]
	}
	_, portText, _ := net.SplitHostPort(s.cfg.Addr)
	port, _ := strconv.ParseUint(portText, 10, 16)
	b := make([]byte, 4, 4+1+4+1+len(host)+1+len(user)+1+2+4+4)
	b = append(b, gomysql.COM_REGISTER_SLAVE)
	b = binary.LittleEndian.AppendUint32(b, s.replicaID)
	b = append(append(b, byte(len(host))), host...)
	b = append(append(b, byte(len(user))), user...)
	b = append(b, 0) // no password
	b = binary.LittleEndian.AppendUint16(b, uint16(port))
	b = binary.LittleEndian.AppendUint32(b, 0)    // replication rank, unused
	return binary.LittleEndian.AppendUint32(b, 0) // source id: the server fills it in
}

// dumpCommand is COM_BINLOG_DUMP_GTID for a MySQL GTID start, else
// COM_BINLOG_DUMP: from a file position, or for MariaDB from the GTID
// state set before it (the file and position are then ignored).
func (s *Source) dumpCommand(from dumpStart, maria bool) []byte {
	b := make([]byte, 4, 64)
	if from.gtid != nil && !maria {
		set := from.gtid.Encode()
		b = append(b, gomysql.COM_BINLOG_DUMP_GTID)
		b = binary.LittleEndian.AppendUint16(b, 0) // flags: a blocking dump
		b = binary.LittleEndian.AppendUint32(b, s.replicaID)
		b = binary.LittleEndian.AppendUint32(b, 0) // no file name
		b = binary.LittleEndian.AppendUint64(b, 4) // position: the first event of the file the set points to
		b = binary.LittleEndian.AppendUint32(b, uint32(len(set)))
		return append(b, set...)
	}
	file, pos := from.pos.File, max(from.pos.Pos, 4) // 4: right after the file's magic number
	if from.gtid != nil {
		file, pos = "", 4
	}
	b = append(b, gomysql.COM_BINLOG_DUMP)
	b = binary.LittleEndian.AppendUint32(b, pos)
	b = binary.LittleEndian.AppendUint16(b, 0) // flags: a blocking dump
	b = binary.LittleEndian.AppendUint32(b, s.replicaID)
	return append(b, file...)
}

// killDump ends the server's thread of a dump connection from a
// connection of its own: closing the dump's socket ends it only when the
// server next writes to it, and a KILL on the dump connection itself is
// never read. Only a binlog dump is killed: after a server restart, the
// id may belong to another client's connection.
func (s *Source) killDump(id uint32) {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ConnectTimeout)
	defer cancel()
	conn, err := s.connect(ctx)
	if err != nil {
		s.log.Debug("cannot connect to end the binlog dump's server thread; it ends at its next write", "connection", id, "error", err)
		return
	}
	defer conn.Close()
	dumps, err := threadIDs(conn, "Binlog Dump")
	if err == nil && slices.Contains(dumps, uint64(id)) {
		_, err = conn.Execute("KILL CONNECTION " + strconv.FormatUint(uint64(id), 10))
	}
	var me *gomysql.MyError
	if err != nil && !(errors.As(err, &me) && me.Code == errNoSuchThread) {
		s.log.Debug("cannot end the binlog dump's server thread; it ends at its next write", "connection", id, "error", err)
	}
}

// start reads the dump on a goroutine of its own until it ends, handing
// every event to f; the error that ended it goes to f.ended.
func (d *dumpConn) start(f *feed) {
	d.done = make(chan struct{})
	go func() {
		defer close(d.done)
		defer func() {
			// Outside HandleEvent's own recover (go-mysql's error packet
			// decoder, say): stop the source, as HandleEvent does, rather
			// than the process.
			if p := recover(); p != nil {
				f.ended <- errFatal(fmt.Errorf("read the binlog dump: panic: %v", p))
			}
		}()
		err := d.read(f)
		if d.closed.Load() && f.err == nil {
			err = errDumpClosed
		}
		f.ended <- err
	}()
}

func (d *dumpConn) read(f *feed) error {
	for {
		p, err := d.packets.packet()
		if err != nil {
			return fmt.Errorf("read the binlog dump: %w", err)
		}
		if len(p) == 0 {
			return errors.New("read the binlog dump: an empty packet")
		}
		switch p[0] { // the first byte says what the packet is
		case gomysql.OK_HEADER: // an event follows
			ev, err := f.frame.frame(p[1:])
			if err != nil {
				return err
			}
			if err := f.HandleEvent(ev); err != nil {
				return err
			}
		case gomysql.ERR_HEADER:
			return d.conn.HandleErrorPacket(p)
		case gomysql.EOF_HEADER: // only a non-blocking dump, or a server shutting down, ends
			return errors.New("the server ended the binlog dump")
		default:
			return fmt.Errorf("read the binlog dump: a packet of unknown kind 0x%02x", p[0])
		}
	}
}

// close ends the dump and waits for its reading goroutine; the feed's
// events are no longer handled once it returns. It may be called more
// than once, and concurrently (the pump and its watchdog).
func (d *dumpConn) close() {
	d.once.Do(func() {
		d.closed.Store(true)
		_ = d.conn.SetReadDeadline(time.Now()) // a read waiting for the server returns
		d.kill(d.conn.GetConnectionID())
		if d.done != nil {
			<-d.done
		}
		_ = d.conn.Conn.Conn.Close() // no COM_QUIT: the server is not reading this connection
	})
}
