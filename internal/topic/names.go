package topic

// The box's topics, in one table. Each is relative to the box prefix
// (fieldkit/<box>): in-process events use them as they are, MQTT puts the
// prefix in front (Under). The broker's ACL, the parts that publish and
// the devices that listen all take their names from here, so that they
// cannot drift apart.

// Under is rel below prefix: the absolute MQTT topic.
func Under(prefix, rel string) string { return prefix + "/" + rel }

// Status is where the box announces online (retained) and its will
// offline.
const Status = "status"

// The instance probe: before connecting, an agent asks on InstancePing
// whether another live agent holds the box id (answers on InstancePong,
// holds Instance retained).
const (
	Instance     = "instance"
	InstancePing = "instance/ping"
	InstancePong = "instance/pong"
)

// WearableBase is a wearable's level, cue/<id>: a wearable's broker
// account may use only topics below it.
func WearableBase(id string) string { return "cue/" + id }

// WearableCmd carries the cues a wearable plays (QoS 1, not retained).
func WearableCmd(id string) string { return WearableBase(id) + "/cmd" }

// WearableAck is where a wearable acknowledges a cue by its id.
func WearableAck(id string) string { return WearableBase(id) + "/ack" }

// WearableAlert is the event when a wearable did not acknowledge a cue.
func WearableAlert(id string) string { return WearableBase(id) + "/alert" }

// Button is a button's event: what is press or release.
func Button(name, what string) string { return "button/" + name + "/" + what }

// BatteryState is a rig's retained state.
func BatteryState(rig string) string { return "battery/" + rig + "/state" }

// BatteryAlert is a rig's level change.
func BatteryAlert(rig string) string { return "battery/" + rig + "/alert" }

// PrinterState is a printer's retained state.
func PrinterState(name string) string { return "printer/" + name + "/state" }

// PrinterAlert is a printer's job alert.
func PrinterAlert(name string) string { return "printer/" + name + "/alert" }

// PrinterPrint takes print jobs for a printer ("+" for any).
func PrinterPrint(name string) string { return "printer/" + name + "/print" }

// SceneState is a scene's retained state.
func SceneState(name string) string { return "scene/" + name + "/state" }

// SceneRun fires a scene.
func SceneRun(name string) string { return SceneCmd(name, "run") }

// SceneCmd is a command to a scene ("+" for any): run or cancel.
func SceneCmd(name, verb string) string { return "scene/" + name + "/" + verb }

// Receipt topics.
const (
	ReceiptsNew     = "receipts/new"     // a sale from the point of sale
	ReceiptsBacklog = "receipts/backlog" // the uplink's retained backlog
	ReceiptsAlarm   = "receipts/alarm"   // disk, chain or uplink alarms
	// ReceiptsRehearsal announces every switch into or out of rehearsal.
	ReceiptsRehearsal = "receipts/rehearsal"
)

// Pickup desk topics: every hand-over, and the alert on a refused second
// scan of a handed-over order. Their payloads name the order, never the
// buyer.
const (
	PickupHandover = "pickup/handover"
	PickupAlert    = "pickup/alert"
)
