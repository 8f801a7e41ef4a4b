package broker

import (
	"testing"

	"fieldkit/internal/topic"
)

// The ACL admits a wearable to exactly the topics the wearable output
// uses (both take them from the topic table), and to no other's.
func TestWearableACLMatchesTopicTable(t *testing.T) {
	const prefix = "fieldkit/box1"
	for _, rel := range []string{topic.WearableCmd("anna"), topic.WearableAck("anna"), topic.WearableAlert("anna")} {
		abs := topic.Under(prefix, rel)
		if !WearableAllowed(prefix, "anna", abs) {
			t.Errorf("anna is refused her own %s", abs)
		}
		if WearableAllowed(prefix, "bob", abs) || WearableAllowed(prefix, "ann", abs) {
			t.Errorf("another wearable may use %s", abs)
		}
	}
	if WearableAllowed(prefix, "anna", topic.Under(prefix, topic.WearableBase("anna"))) {
		t.Error("the base level itself is allowed")
	}
}
