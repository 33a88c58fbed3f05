// Progressive enhancement only: every action works as a plain form post without this file.
// It moves focus to an error summary so that keyboard and screen-reader users hear it first.
document.addEventListener("DOMContentLoaded", function () {
  var summary = document.querySelector(".error-summary");
  if (summary) { summary.focus(); }
});
