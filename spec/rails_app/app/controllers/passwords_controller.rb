# frozen_string_literal: true

class PasswordsController < ApplicationController
  actions :new, :create, :edit, :update
end
