// Draws the API reference with the vendored Swagger UI; a file of its own, as the
// console's CSP allows no inline script. "Try it out" is off: the console does not hold
// API keys.
document.addEventListener("DOMContentLoaded", function () {
  var node = document.getElementById("swagger-ui");
  if (!node || !window.SwaggerUIBundle) { return; }
  window.SwaggerUIBundle({
    url: node.dataset.schema,
    domNode: node,
    supportedSubmitMethods: [],
    deepLinking: false,
  });
});
