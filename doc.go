// Package ferry holds the types every part of Ferry shares: the change record a
// source produces, the Source and Sink contracts, positions, and the error
// classification the pipeline uses to decide between retrying and
// dead-lettering.
//
// The pipeline (internal/pipeline) owns the loop: it reads a Batch from a
// Source, turns each Change into CloudEvents (package transform), writes the
// events to every Sink they are routed to, and only when every event of a
// batch and of all batches before it is acknowledged by every sink (or
// dead-lettered) does it persist the batch's Checkpoint and call its Ack.
// Sources and sinks therefore never coordinate with each other; they only keep
// the contracts documented on their interfaces.
//
// A connector is one package: a configuration struct whose keys are declared
// once, with their rules, in ferry struct tags (FieldRules), the source or
// sink itself, and one registration value (SinkSpec, SourceSpec) that the
// application lists in internal/app/registry.go. It passes the acceptance
// suite in connectors/conntest.
package ferry
