package kafka

import (
	"context"
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ferry-cdc/ferry"
	"github.com/ferry-cdc/ferry/connectors/conntest"
)

// TestBrokerErrorsClassifiedByTheClientsFlags: the broker answers a
// produce with an error code; the sink classifies it as franz-go does (a
// code it does not retry is permanent), except for the operator-fixable
// authorization errors, which wait. (A code it retries, like
// NotEnoughReplicas, never reaches the sink: the client retries it.)
func TestBrokerErrorsClassifiedByTheClientsFlags(t *testing.T) {
	cases := []struct {
		err       *kerr.Error
		permanent bool
	}{
		{kerr.InvalidTimestamp, true},
		{kerr.PolicyViolation, true},
		{kerr.RecordListTooLarge, true},
		{kerr.TopicAuthorizationFailed, false},
	}
	for _, c := range cases {
		t.Run(c.err.Message, func(t *testing.T) {
			cl := cluster(t, kfake.SeedTopics(1, "orders"))
			answered := false
			cl.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
				if answered {
					return nil, nil, false
				}
				cl.KeepControl()
				answered = true
				return produceError(req.(*kmsg.ProduceRequest), c.err.Code), nil, true
			})
			s := newSink(t, clientFranz, cl.ListenAddrs(), func(cfg *Config) { cfg.Timeout = 2e9 })
			err := s.Write(context.Background(), conntest.Events(1, 1))
			var be *ferry.BatchError
			if !errors.As(err, &be) || be.Failed(0) == nil {
				t.Fatalf("Write = %v, want the event failed", err)
			}
			if got := be.Failed(0); ferry.IsPermanent(got) != c.permanent || !errors.Is(got, c.err) && c.permanent {
				t.Fatalf("%v: permanent=%v, want %v", got, ferry.IsPermanent(got), c.permanent)
			}
		})
	}
}

// produceError answers every partition of req with code.
func produceError(req *kmsg.ProduceRequest, code int16) *kmsg.ProduceResponse {
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID // v13+ names topics by id
		for _, rp := range rt.Partitions {
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.ErrorCode = code
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}
