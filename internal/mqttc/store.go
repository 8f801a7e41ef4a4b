package mqttc

import "github.com/eclipse/paho.mqtt.golang/packets"

// noStore keeps no in-flight messages across a reconnect. The agent does
// not rely on the client library resending them: retained state is
// re-published by SetRetained's registry, and cues have their own
// ack-and-repeat. Resending also races inside the library (its resume
// marks stored packets as duplicates while the writer may still be
// sending them), which the race detector reports.
type noStore struct{}

func (noStore) Open()                             {}
func (noStore) Put(string, packets.ControlPacket) {}
func (noStore) Get(string) packets.ControlPacket  { return nil }
func (noStore) All() []string                     { return nil }
func (noStore) Del(string)                        {}
func (noStore) Close()                            {}
func (noStore) Reset()                            {}
