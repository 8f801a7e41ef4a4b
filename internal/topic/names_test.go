package topic

import "testing"

// The table's names are valid topic names, and a wearable's topics all
// sit below its base (which the broker's ACL relies on).
func TestNames(t *testing.T) {
	for _, n := range []string{Status, Instance, InstancePing, InstancePong, WearableBase("anna"), WearableCmd("anna"), WearableAck("anna"), WearableAlert("anna"),
		Button("go", "press"), BatteryState("enc1"), BatteryAlert("enc1"), PrinterState("counter"), PrinterAlert("counter"),
		PrinterPrint("counter"), SceneState("drop"), SceneRun("drop"), ReceiptsNew, ReceiptsBacklog, ReceiptsAlarm, ReceiptsRehearsal, PickupHandover, PickupAlert,
		Under("fieldkit/box1", WearableCmd("anna"))} {
		if err := ValidName(n); err != nil {
			t.Errorf("%q: %v", n, err)
		}
	}
	if err := ValidFilter(Under("p", SceneCmd("+", "cancel"))); err != nil {
		t.Error(err)
	}
	if err := ValidFilter(PrinterPrint("+")); err != nil {
		t.Error(err)
	}
	for _, n := range []string{WearableCmd("anna"), WearableAck("anna"), WearableAlert("anna")} {
		if !Match(WearableBase("anna")+"/#", n) || Match(WearableBase("ann")+"/#", n) {
			t.Errorf("%s is not below its wearable's base alone", n)
		}
	}
	if got := Under("fieldkit/box1", BatteryState("enc1")); got != "fieldkit/box1/battery/enc1/state" {
		t.Errorf("Under = %q", got)
	}
}
