-- AU5: a token acts only for the user who made it (or one the operator made at the server's
-- console, created_by 'system'). Tokens one user made for another before that rule are revoked
-- here, so that the token list shows them as what they are; auth.TokenUser refuses them anyway.
UPDATE api_token t SET revoked_at = now(), revoked_by = 'system (AU5: made for another user)'
  FROM app_user u
 WHERE u.operation_id = t.operation_id AND u.id = t.user_id
   AND t.revoked_at IS NULL AND t.created_by <> u.email AND t.created_by <> 'system';
