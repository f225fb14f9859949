"use strict";
// The automation form shows only the fields that apply to the chosen type: the "Comment automations
// only" section is hidden for DM and story automations. Its inputs are disabled too, so they are not
// submitted and a stale media id or public reply can never be saved on a DM automation.
document.addEventListener("DOMContentLoaded", function () {
  const type = document.getElementById("id_type");
  if (!type) {
    return;
  }
  const sections = document.querySelectorAll("fieldset.comment-only");
  function apply() {
    const applies = type.value === "comment";
    sections.forEach(function (section) {
      section.style.display = applies ? "" : "none";
      section.querySelectorAll("input, textarea, select").forEach(function (input) {
        input.disabled = !applies;
      });
    });
  }
  type.addEventListener("change", apply);
  apply();
});
