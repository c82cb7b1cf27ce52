// Swagger UI on /openapi.json. validatorUrl: null keeps it from sending the document to an
// outside validator; "Try it out" requests are same-origin and carry the credentials the
// browser was given for /docs.
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
  docExpansion: "list",
  defaultModelsExpandDepth: 0,
  displayRequestDuration: true,
});
